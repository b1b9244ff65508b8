#include "kernels/cpu/rope.h"

#include <cmath>

namespace flashlm::ops {

RopeFreqs::RopeFreqs(int64_t n_rot, float base, float scale, const float* freq_factors)
    : n_rot_(n_rot), base_(base), scale_(scale), theta_scale_(std::pow(base, -2.0f / static_cast<float>(n_rot))) {
  if (freq_factors != nullptr) factors_.assign(freq_factors, freq_factors + n_rot / 2);
}

void RopeFreqs::cos_sin(int64_t pos, float* cs) const {
  const int64_t half = n_rot_ / 2;
  // ops::rope's float recurrence (ggml's), operation for operation.
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < half; ++i) {
    const float ff = factors_.empty() ? 1.0f : factors_[static_cast<size_t>(i)];
    const float angle = scale_ * (theta / ff);
    cs[i] = std::cos(angle);
    cs[half + i] = std::sin(angle);
    theta *= theta_scale_;
  }
}

void rope_apply(float* x, int64_t n_rot, RopeStyle style, const float* cs) {
  const int64_t half = n_rot / 2;
  const float* c = cs;
  const float* s = cs + half;
  if (style == RopeStyle::kNeox) {  // pairs (i, i + half): two contiguous halves
    float* x0 = x;
    float* x1 = x + half;
    for (int64_t i = 0; i < half; ++i) {
      const float a = x0[i], b = x1[i];
      x0[i] = a * c[i] - b * s[i];
      x1[i] = a * s[i] + b * c[i];
    }
  } else {  // adjacent pairs (2i, 2i + 1)
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[2 * i], b = x[2 * i + 1];
      x[2 * i] = a * c[i] - b * s[i];
      x[2 * i + 1] = a * s[i] + b * c[i];
    }
  }
}

}  // namespace flashlm::ops
