// Feed-forward blocks shared by every architecture. ffn_dense is the gated FFN
// (SwiGLU / GeGLU): out = down(act(gate(x)) * up(x)). MoE layers run the same block per
// expert (models/moe.h).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "models/config.h"
#include "models/lora.h"
#include "tensor/tensor.h"

namespace flashlm {

// Optional hook that sees a layer's FFN input rows and intermediate activations
// (act(gate) * up); moefy's calibration uses it. Unset: no cost.
class FfnObserver {
 public:
  virtual ~FfnObserver() = default;
  // input: [n, n_embd] normalised FFN input; act: [n, n_ff] of this layer.
  virtual void on_ffn(int layer, const float* input, const float* act, int64_t n) = 0;
};
struct FfnTap {
  FfnObserver* observer = nullptr;
  int layer = 0;
};

// A Mixture-of-Experts layer's weights (models/moe.h runs them).
struct MoeWeights {
  TensorView router;                // ffn_gate_inp: [n_embd] x [n_expert]
  std::vector<FfnWeights> experts;  // [n_expert] 2-D slices of ffn_{gate,up,down}_exps: [n_embd] x [n_ff_exp]
  FfnWeights shexp;                 // shared expert, iff n_ff_shexp: [n_embd] x [n_ff_shexp]
  TensorView shexp_gate;            // ffn_gate_inp_shexp: [n_embd] f32, iff shexp_gate
};

// A layer's LoRA adapters on its FFN (models/lora.h) with their scratch; unset: none.
struct FfnLora {
  const LayerLora* lora = nullptr;
  float* h = nullptr;    // [n, max rank]
  float* tmp = nullptr;  // [n, n_ff]
};

// x: [n, n_embd] normalised input (row stride n_embd); out: [n, n_embd].
// gate_buf, up_buf: [n, n_ff] scratch. FfnWeights (one gated FFN) is backend/backend.h's.
void ffn_dense(const ComputeBackend& be, const ExecContext& ctx, const FfnWeights& w, Activation act, const float* x,
               int64_t n, int64_t n_embd, float* out, float* gate_buf, float* up_buf, FfnTap tap = {},
               FfnLora lora = {});

}  // namespace flashlm
