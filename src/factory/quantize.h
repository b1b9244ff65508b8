// flashlm quantize: a GGUF model rewritten with its weight matrices in other types.
// Which tensors change follows llama-quantize: 2-D and 3-D `*.weight` tensors, except
// MoE routers (`ffn_gate_inp`), which stay as they are like every vector (norms,
// biases); which type each gets is its mix (plan_quantize). Source blocks are dequantized to f32 and
// quantized again; a tensor already of the target type is copied bit for bit. Metadata
// is copied, with general.file_type and general.quantization_version set as llama.cpp
// sets them, so llama.cpp loads the output too.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "factory/imatrix.h"
#include "formats/gguf.h"
#include "tensor/dtype.h"
#include "util/status.h"

namespace flashlm::factory {

// llama.cpp's mixes: which tensors get more bits than the file's base type.
enum class QuantMix { kNone, kQ2_K, kQ2_K_S, kQ3_K_S, kQ3_K_M, kQ3_K_L, kQ4_K_S, kQ4_K_M, kQ5_K_S, kQ5_K_M, kQ6_K };

// A --type value: the base element type, llama.cpp's llama_ftype number for the file,
// and its mix.
struct QuantType {
  std::string name;  // as llama-quantize spells it: "Q4_K_M", "Q4_0", "F16", ...
  DType type = DType::F32;
  uint32_t file_type = 0;
  QuantMix mix = QuantMix::kNone;
};

// llama-quantize's type names, case-insensitive ("Q3_K", "Q4_K" and "Q5_K" are its
// aliases of Q3_K_M, Q4_K_M and Q5_K_M). Types flashlm cannot make yet (the i-quants and
// ternary types) are an error that says so.
Result<QuantType> parse_quant_type(std::string_view name);

// One output tensor: its source and the type it is written in.
struct TensorPlan {
  const gguf::TensorInfo* src = nullptr;
  DType type = DType::F32;
  bool weighted = false;  // rounded with imatrix weights (quantize_model sets it)
  bool converted() const { return type != src->dtype; }
};

// The type of every tensor of `in`, in file order. Without `pure`, llama-quantize's
// choices (llama_tensor_get_type) for the dense families: the output matrix (or the tied
// embedding) in Q6_K; attn_v, attn_output and ffn_down with more bits under the mixes
// (Q6_K on the layers its use_more_bits() picks for the _M mixes, Q5_K on the first ones
// for Q4_K_S, Q3_K/Q4_K/Q5_K for the Q2_K and Q3_K mixes); with an imatrix, Q4_0/Q5_0's
// first eighth of ffn_down in Q4_1/Q5_1; and a K-quant whose 256-element blocks do not
// fit a matrix's rows replaced by its fallback (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K ->
// Q5_1, Q6_K -> Q8_0, then F16). With `pure` every matrix gets the base type, and one
// whose rows it cannot hold is an error naming the tensor, as is a type that cannot be read.
Result<std::vector<TensorPlan>> plan_quantize(const gguf::File& in, const QuantType& to, bool pure,
                                              bool has_imatrix = false);

struct QuantizeProgress {
  size_t index = 0;  // 1-based, of n_tensors
  size_t n_tensors = 0;
  const TensorPlan* tensor = nullptr;
};

struct QuantizeOptions {
  int n_threads = 0;  // 0: the CPUs this process may use
  bool pure = false;  // every weight matrix in the base type (llama-quantize --pure)
  // Importance-weighted rounding for the matrices it has entries for (llama-quantize
  // --imatrix); not owned. Checked against the model before anything is written.
  const Imatrix* imatrix = nullptr;
  std::string imatrix_path;  // recorded in the output's quantize.imatrix.file, as llama-quantize does
  // Called before each tensor is written (on the calling thread).
  std::function<void(const QuantizeProgress&)> progress;
};

// Writes `in` quantized to `to` at out_path: to a temporary file beside it, renamed over
// it only when complete. out_path must not name the input file.
Status quantize_model(const gguf::File& in, const QuantType& to, const std::string& out_path,
                      const QuantizeOptions& opts);

}  // namespace flashlm::factory
