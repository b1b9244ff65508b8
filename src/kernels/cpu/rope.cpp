#include "kernels/cpu/rope.h"

#include <cmath>

namespace flashlm::ops {

RopeFreqs::RopeFreqs(int64_t n_rot, float base, float scale, const float* freq_factors)
    : n_rot_(n_rot), base_(base), scale_(scale) {
  const int64_t half = n_rot / 2;
  pow_.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    pow_[static_cast<size_t>(i)] = std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / n_rot);
  }
  if (freq_factors != nullptr) factors_.assign(freq_factors, freq_factors + half);
}

void RopeFreqs::cos_sin(int64_t pos, float* cs) const {
  const int64_t half = n_rot_ / 2;
  for (int64_t i = 0; i < half; ++i) {
    // The reference's expression and order: (pos * scale) * base^(-2i/n_rot), then / factor.
    double theta = static_cast<double>(pos) * scale_ * pow_[static_cast<size_t>(i)];
    if (!factors_.empty()) theta /= factors_[static_cast<size_t>(i)];
    cs[i] = static_cast<float>(std::cos(theta));
    cs[half + i] = static_cast<float>(std::sin(theta));
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
