// LoRA adapters applied at run time, read from llama.cpp's LoRA GGUF (general.type
// "adapter", adapter.type "lora", adapter.lora.alpha; per adapted matrix W a pair
// "<W's name>.lora_a" with ne = [n_in, rank] and "<W's name>.lora_b" with ne = [rank,
// n_out]). An adapted projection computes y = W x + s (alpha / rank) B (A x), s the
// user's scale (--lora-scaled), as llama.cpp does; the base weights are never touched, so
// a quantized base keeps its bits. The adapter's matrices are held as F32 (dequantized
// at load if the file stores them quantized), B with the scale folded in.
//
// Adapted matrices: attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down of
// dense layers. An adapter naming any other tensor (embeddings, output, MoE experts) is
// refused at load with its name: its effect would otherwise be silently dropped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "formats/gguf.h"
#include "models/config.h"
#include "util/status.h"

namespace flashlm {

struct ModelWeights;  // models/weights.h (which includes this file through models/ffn.h)

struct LoraSpec {
  std::string path;
  float scale = 1.0f;
};

// One adapter on one matrix: a [n_in] x [rank], b [rank] x [n_out] (scale folded in).
struct LoraPair {
  TensorView a;
  TensorView b;
};

// The matrices of a layer an adapter can change, in LayerWeights' terms.
enum class LoraTarget { kQ, kK, kV, kO, kGate, kUp, kDown, kCount };
// "attn_q", ..., "ffn_down": the GGUF tensor kind ("blk.N.<kind>.weight").
const char* lora_target_name(LoraTarget t);

struct LayerLora {
  std::vector<LoraPair> at[static_cast<int>(LoraTarget::kCount)];  // every adapter's pair, in load order
  const std::vector<LoraPair>& operator[](LoraTarget t) const { return at[static_cast<int>(t)]; }
};

class LoraSet {
 public:
  // Every adapter of specs checked against the base (architecture, tensor names and
  // shapes) and placed on the backend. Empty specs: an empty set.
  static Result<LoraSet> load(const std::vector<LoraSpec>& specs, const gguf::File& base, const ModelConfig& cfg,
                              const ModelWeights& w, const ComputeBackend& backend);

  bool empty() const { return layers_.empty(); }
  const LayerLora& layer(int il) const { return layers_[static_cast<size_t>(il)]; }
  // The largest rank any adapter has on any matrix (scratch sizing).
  int64_t max_rank() const { return max_rank_; }
  // Identifies the adapters and scales (mixed into the model's KV cache identity).
  uint64_t fingerprint() const { return fingerprint_; }

 private:
  std::vector<LayerLora> layers_;
  std::vector<std::vector<float>> store_;  // the F32 matrices the views point into
  int64_t max_rank_ = 0;
  uint64_t fingerprint_ = 0;
};

// y[n, n_out] (row stride n_out) += sum over pairs of b . (a . x) for the rows of x
// (stride ldx). h: [n, max_rank], tmp: [n, n_out] scratch.
void apply_lora(const ComputeBackend& be, const ExecContext& ctx, const std::vector<LoraPair>& pairs, const float* x,
                int64_t ldx, float* y, int64_t n_out, int64_t n, float* h, float* tmp);

}  // namespace flashlm
