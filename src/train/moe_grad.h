// A Mixture-of-Experts FFN's forward and backward for training, the inference layer's
// (models/moe.h) computation in F32: router logits, the same moe_route (softmax or
// sigmoid scores, top-k, optional normalisation, scale, unit weights, adaptive k), each
// expert's gated FFN over the tokens routed to it, the weighted sum, and the optional
// shared expert with its sigmoid gate.
//
// The backward treats the choice of experts as fixed (it is piecewise constant in the
// router logits) and differentiates through everything else: the experts, the routing
// weights back to the router (none flows under unit weights: the router then learns
// nothing from the loss), the shared expert and its gate.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "models/config.h"
#include "train/grad_ops.h"

namespace flashlm::train {

// One MoE layer's F32 weights; rows as GGUF stores them (ne0 = input size). Shared-expert
// pointers are null when the layer has none.
struct MoeParamPtrs {
  const float* router = nullptr;  // [n_expert][n_embd]
  const float* gate = nullptr;    // [n_expert][n_ff_exp][n_embd]
  const float* up = nullptr;      // [n_expert][n_ff_exp][n_embd]
  const float* down = nullptr;    // [n_expert][n_embd][n_ff_exp]
  const float* sh_gate = nullptr;  // [n_ff_shexp][n_embd]
  const float* sh_up = nullptr;    // [n_ff_shexp][n_embd]
  const float* sh_down = nullptr;  // [n_embd][n_ff_shexp]
  const float* sh_inp = nullptr;   // [n_embd]: the shared expert's gate
};
// Their gradients, added into; a null pointer is not wanted.
struct MoeGradPtrs {
  float* router = nullptr;
  float* gate = nullptr;
  float* up = nullptr;
  float* down = nullptr;
  float* sh_gate = nullptr;
  float* sh_up = nullptr;
  float* sh_down = nullptr;
  float* sh_inp = nullptr;
};

// What the backward needs. Expert rows are grouped by expert (offset[e]..offset[e+1]),
// tokens ascending within an expert, as the inference layer groups them.
struct MoeActs {
  std::vector<float> logits;       // [T][n_expert] router outputs
  std::vector<int32_t> ids;        // [T][k] selected experts, best first
  std::vector<float> weights;      // [T][k]
  std::vector<int32_t> n_used;     // [T]
  std::vector<int32_t> offset;     // [n_expert + 1]
  std::vector<int32_t> row_token;  // [rows] grouped row -> token
  std::vector<int32_t> slot_row;   // [T][k] (token, slot) -> grouped row
  std::vector<float> xg;           // [rows][n_embd] inputs gathered by expert
  std::vector<float> gate, up, h;  // [rows][n_ff_exp]; h = glu(gate, up)
  std::vector<float> y;            // [rows][n_embd] expert outputs before weighting
  std::vector<float> sh_gate, sh_up, sh_h;  // [T][n_ff_shexp]
  std::vector<float> sh_y;                  // [T][n_embd]
  std::vector<float> sh_logit;              // [T] shared gate before the sigmoid

  int64_t bytes() const;
};

// out[T][n_embd] = the layer's output for its normalised input x[T][n_embd].
void moe_fwd(const MoeConfig& m, Glu glu, const MoeParamPtrs& w, const float* x, int64_t T, int64_t n_embd,
             float* out, MoeActs* a, ThreadPool& pool);
// dx[T][n_embd] += the input gradient for the output gradient dout; the weight gradients
// are added into g.
void moe_bwd(const MoeConfig& m, Glu glu, const MoeParamPtrs& w, const MoeActs& a, const float* x,
             const float* dout, int64_t T, int64_t n_embd, float* dx, const MoeGradPtrs& g, ThreadPool& pool);

}  // namespace flashlm::train
