// GGUF (v2, v3) reader over a memory map. Every count, offset, size, alignment and string
// is validated before use, and allocations are bounded by the file size, so a corrupt
// or hostile file yields one clear error, never a crash or a huge allocation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tensor/tensor.h"
#include "util/mapped_file.h"
#include "util/status.h"

namespace flashlm::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5,
  kFloat32 = 6, kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11,
  kFloat64 = 12,
};
const char* value_type_name(ValueType t);

// One metadata value. Scalars use the field matching their type class; arrays keep
// their element type and a vector of the matching class (nested arrays in `items`).
struct Value {
  ValueType type = ValueType::kUint8;
  int64_t i = 0;      // all integer types (uint64 values above INT64_MAX are rejected)
  double f = 0.0;     // float32 / float64
  bool b = false;     // bool
  std::string s;      // string
  ValueType elem_type = ValueType::kUint8;  // arrays only
  uint64_t count = 0;                       // arrays only: number of elements
  std::vector<int64_t> ints;                // arrays of integers and bools
  std::vector<double> floats;               // arrays of floats
  std::vector<std::string> strings;         // arrays of strings
  std::vector<Value> items;                 // arrays of arrays

  bool is_integer() const;
  bool is_float() const { return type == ValueType::kFloat32 || type == ValueType::kFloat64; }
  // A short human rendering ("[151936 strings]" for big arrays).
  std::string to_string(size_t max_items = 8) const;
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};
  uint64_t offset = 0;       // relative to the start of the data section
  uint64_t size_bytes = 0;
  const uint8_t* data = nullptr;  // into the map; valid while the File lives

  int64_t nelements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  TensorView view() const;  // contiguous view over the mapped bytes
};

class File {
 public:
  // backing: how the bytes get into memory (util/mapped_file.h); mapped unless asked.
  static Result<File> open(const std::string& path, FileBacking backing = FileBacking::kMap);
  // Parses an already-mapped buffer (used by tests and the fuzzer).
  static Result<File> parse(MappedFile map);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::string& path() const { return map_->path(); }
  size_t file_size() const { return map_->size(); }
  FileBacking backing() const { return map_->backing(); }
  const uint8_t* bytes() const { return map_->data(); }  // the whole file, file_size() bytes

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;

  // Typed getters: an error names the key when it is missing or has the wrong type.
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;  // accepts integers too
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<const Value*> get_array(std::string_view key, ValueType elem) const;
  // As above, but a missing key gives `def`; a key of the wrong type is still an error.
  Result<int64_t> get_int_or(std::string_view key, int64_t def) const;
  Result<double> get_float_or(std::string_view key, double def) const;
  Result<bool> get_bool_or(std::string_view key, bool def) const;
  Result<std::string> get_string_or(std::string_view key, std::string def) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  std::unique_ptr<MappedFile> map_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace flashlm::gguf
