// RoPE with the trigonometry taken out of the per-head loop. A position's angles depend
// on the position and the RoPE configuration (base, scale, n_rot, frequency factors),
// not on the head, so a forward pass computes each token's cos/sin once per
// configuration and every q and k head of every layer using it applies that table.
//
// The angles are ops::rope's (which stays the reference), computed the same way:
// ggml's float recurrence theta_{i+1} = theta_i * base^(-2 / n_rot) from theta_0 = pos,
// angle_i = scale * theta_i / factor_i (see ops::rope for why not the exact angle).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/ops.h"

namespace flashlm::ops {

// One RoPE configuration with its per-pair frequencies computed once.
class RopeFreqs {
 public:
  // freq_factors: n_rot / 2 divisors of the pairs' angles, or null.
  RopeFreqs(int64_t n_rot, float base, float scale, const float* freq_factors);

  int64_t n_rot() const { return n_rot_; }
  bool same_as(int64_t n_rot, float base, float scale) const {
    return n_rot == n_rot_ && base == base_ && scale == scale_;
  }

  // cs[i] = cos(theta_i), cs[n_rot / 2 + i] = sin(theta_i) at `pos`, for i < n_rot / 2
  // (n_rot floats in all).
  void cos_sin(int64_t pos, float* cs) const;

 private:
  int64_t n_rot_;
  float base_;
  float scale_;
  float theta_scale_;           // powf(base, -2 / n_rot)
  std::vector<float> factors_;  // [n_rot / 2] or empty
};

// Rotates the first n_rot dims of one head vector in place by a table from
// RopeFreqs::cos_sin: the products ops::rope makes with the same cos and sin.
void rope_apply(float* x, int64_t n_rot, RopeStyle style, const float* cs);

}  // namespace flashlm::ops
