// A Hugging Face model directory as a GGUF model: config.json (hf_config.h), the
// safetensors weights (one file or shards) under llama.cpp's tensor names with its Q/K
// row order, and the tokenizer (hf_tokenizer.h). `flashlm convert` writes the result to a
// file; `-m DIR` builds the same bytes in memory and loads them as any GGUF, so a
// directory and its converted file are one model by construction.
#pragma once

#include <optional>
#include <string>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/safetensors.h"
#include "hf/hf_config.h"
#include "tensor/dtype.h"
#include "util/status.h"

namespace flashlm::hf {

// True when `path` is a directory holding a config.json.
bool is_model_dir(const std::string& path);

struct ConvertOptions {
  // The type of the matrices (F32, F16, BF16 or Q8_0); unset: as stored. Norm weights
  // and other vectors are F32 whatever this says, as llama.cpp's converter writes them.
  std::optional<DType> type;
};

class HfModel {
 public:
  static Result<HfModel> open(const std::string& dir);
  // Declares every key and tensor in `out`; the tensors' bytes are produced from this
  // object's mapped weights when `out` is written, so it must outlive the write.
  Status to_gguf(const ConvertOptions& opts, gguf::Writer* out) const;
  const HfArch& arch() const { return arch_; }

 private:
  std::string dir_;
  HfArch arch_;
  safetensors::Shards shards_;
  std::vector<std::pair<std::string, gguf::Value>> tokenizer_keys_;
};

// The directory as an in-memory GGUF with its matrices as stored.
Result<gguf::File> open_as_gguf(const std::string& dir);
// A GGUF file (read as `backing` says) or a Hugging Face directory (open_as_gguf, which
// ignores `backing`: the image is built in memory).
Result<gguf::File> open_model(const std::string& path, FileBacking backing = FileBacking::kMap);
// An error when a map was asked for explicitly (--mmap) and `path` is a directory.
Status check_backing(const std::string& path, FileBacking backing);

}  // namespace flashlm::hf
