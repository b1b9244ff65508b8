// GGUF v3 writer. Metadata values use the reader's `Value`, so a file's keys copy across
// unchanged. Tensors are declared with their shape and type up front (so every offset is
// known before any data is written) and their bytes are streamed at write time, either
// from memory that outlives the write (a mapped source file) or from a producer callback
// that emits the tensor in pieces; nothing requires a whole tensor in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/gguf.h"
#include "tensor/dtype.h"
#include "util/status.h"

namespace flashlm::gguf {

// Scalar and array Value constructors for the writer.
Value make_u32(uint32_t v);
Value make_i32(int32_t v);
Value make_u64(uint64_t v);
Value make_f32(float v);
Value make_bool(bool v);
Value make_string(std::string v);
Value make_string_array(std::vector<std::string> v);
Value make_f32_array(std::vector<double> v);
Value make_i32_array(std::vector<int64_t> v);

// Receives one tensor's bytes from a producer; the writer checks the total.
class TensorSink {
 public:
  virtual ~TensorSink() = default;
  virtual Status write(const void* data, size_t n) = 0;
};
using TensorProducer = std::function<Status(TensorSink&)>;

class ByteOut;  // gguf_writer.cpp: where emit() puts the bytes

class Writer {
 public:
  // Sets a key (replacing its value in place when it exists, else appending).
  void set(std::string_view key, Value v);
  bool remove(std::string_view key);
  const Value* find(std::string_view key) const;
  // Copies every key of a file (in its order).
  void copy_metadata(const File& f);

  // Declares a tensor; ne[0] is the row length. Fails on a bad shape, an unsupported
  // type, a row length that is not a multiple of the type's block or a duplicate name.
  // `data` must stay valid until write() returns.
  Status add_tensor(std::string name, DType type, std::vector<int64_t> ne, const void* data);
  Status add_tensor(std::string name, DType type, std::vector<int64_t> ne, TensorProducer producer);
  size_t n_tensors() const { return tensors_.size(); }

  // Writes the file: to a temporary beside `path`, renamed over it only on success.
  Status write(const std::string& path) const;
  // The file's size in bytes, as write() would write it (no producer runs).
  uint64_t size_bytes() const;
  // The same bytes in huge-page memory (util/huge_pages.h), to parse as a gguf::File
  // without a file on disk; `name` stands for the path in errors.
  Result<MappedFile> write_to_memory(const std::string& name) const;

 private:
  struct Pending {
    std::string name;
    DType type = DType::F32;
    std::vector<int64_t> ne;
    uint64_t size_bytes = 0;
    const void* data = nullptr;
    TensorProducer producer;
  };
  Status emit(ByteOut& o) const;
  Status declare(std::string name, DType type, std::vector<int64_t> ne, Pending* out) const;
  uint64_t alignment() const;

  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<Pending> tensors_;
};

}  // namespace flashlm::gguf
