// safetensors reader (Hugging Face's weight format) over a memory map: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype, shape and
// [begin, end) byte offsets into the data that follows, then the data. Everything is
// validated before use, as the official implementation does: the header's length and
// JSON, every dtype and shape, each tensor's byte count against its shape, offsets inside
// the data, no two tensors overlapping and no bytes left unindexed. A file that breaks a
// rule is one clear error naming the tensor and the rule, never a crash.
//
// Tensors of any dtype the format defines are listed; flashlm computes with F32, F16 and
// BF16, and asking for the view of another dtype is an error naming it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "util/mapped_file.h"
#include "util/status.h"

namespace flashlm::safetensors {

struct TensorInfo {
  std::string name;
  std::string dtype;            // as the file names it: "F32", "BF16", "I64", ...
  bool supported = false;       // F32, F16 or BF16: `type` is set
  DType type = DType::F32;
  std::vector<int64_t> shape;   // outermost first, as the file lists it
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
  const uint8_t* data = nullptr;  // into the map; valid while the File lives

  int64_t nelements() const;
};

class File {
 public:
  static Result<File> open(const std::string& path);
  // Parses an already-mapped buffer (tests and the fuzzer).
  static Result<File> parse(MappedFile map);

  const std::string& path() const { return map_->path(); }
  // Tensors in offset order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  // The header's "__metadata__" (string to string), empty when absent.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The tensor's values as F32 (converted from F16/BF16); an error names an unknown
  // tensor or a dtype flashlm does not compute with.
  Result<std::vector<float>> to_f32(const std::string& name) const;

 private:
  std::shared_ptr<MappedFile> map_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A model's weights in one file or in shards: a .safetensors file, a sharded index
// (model.safetensors.index.json: "weight_map" from tensor name to shard file), or a
// directory holding either (the index first). Shard names are plain file names beside
// the index; every tensor the index names must be in its shard, and no tensor may be in
// two shards.
class Shards {
 public:
  static Result<Shards> open(const std::string& path);

  const TensorInfo* find(const std::string& name) const;
  const File* file_of(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  size_t n_files() const { return files_.size(); }

 private:
  std::vector<File> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

}  // namespace flashlm::safetensors
