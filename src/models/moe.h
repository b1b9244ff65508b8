// Mixture-of-Experts FFN: router logits -> gating scores -> top-k experts -> weighted sum
// of the selected experts' gated FFNs (+ a shared expert). A layer kind any family uses.
//
// Speed: tokens are grouped by expert (gather the rows routed to e, one matmul chain per
// expert over those rows, scatter-add with weights), so a step reads each selected
// expert's weights once and never touches unselected ones; decode reads only the k
// chosen experts. Each token sums its experts in its own top-k order, and the matmuls are
// per-row when ExecContext::batch_invariant is set, so a token's output does not depend
// on what else is in the batch. The matmuls, activations and the weighted sum are backend
// ops (ComputeBackend::expert_matmul, glu, moe_combine); routing and grouping are here.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "models/config.h"
#include "models/ffn.h"

namespace flashlm {

// Routes one token. logits: [n_expert] router outputs; scores, order: [n_expert] scratch.
// Writes up to k = n_expert_used expert ids (best first; equal scores: lower id first)
// and their weights; returns how many were selected (fewer than k only under
// adaptive_threshold).
int moe_route(const MoeConfig& m, const float* logits, float* scores, int32_t* order, int32_t* ids,
              float* weights);

// Buffers for moe_ffn, sized once for the largest batch over all MoE layers.
struct MoeScratch {
  int64_t capacity = 0;           // tokens
  std::vector<float> logits;      // [n, n_expert] router outputs
  std::vector<float> scores;      // [n, n_expert]
  std::vector<int32_t> order;     // [n, n_expert]
  std::vector<int32_t> ids;       // [n, k] selected experts per token
  std::vector<float> weights;     // [n, k]
  std::vector<int32_t> n_used;    // [n]
  std::vector<int32_t> offset;    // [n_expert + 1] first grouped row of each expert
  std::vector<int32_t> row_token; // [n * k] grouped row -> token
  std::vector<int32_t> slot_row;  // [n, k] (token, slot) -> grouped row
  std::vector<float> xg;          // [n * k, n_embd] inputs gathered by expert
  std::vector<float> yg;          // [n * k, n_embd] expert outputs
  std::vector<float> gate;        // [n * k, max(n_ff_exp, n_ff_shexp)]
  std::vector<float> up;          // same
  std::vector<float> shared;      // [n, n_embd] shared expert output
  std::vector<float> shared_gate; // [n]

  void reserve(const ModelConfig& cfg, int64_t n_tokens);
};

// x: [n, n_embd] normalised input; out: [n, n_embd].
void moe_ffn(const ComputeBackend& be, const ExecContext& ctx, const MoeConfig& m, const MoeWeights& w,
             Activation act, const float* x, int64_t n, int64_t n_embd, float* out, MoeScratch& s);

// Reference: token by token through `ref` (the reference backend: f32 activations,
// the row ops' references); no grouping. What moe_ffn is tested against.
void moe_ffn_reference(const ComputeBackend& ref, const ExecContext& ctx, const MoeConfig& m, const MoeWeights& w,
                       Activation act, const float* x, int64_t n, int64_t n_embd, float* out);

}  // namespace flashlm
