#include "kernels/cpu/ops.h"

#include <cmath>
#include <limits>

#include "kernels/cpu/avx2/avx2_kernels.h"
#include "kernels/cpu/neon/neon_kernels.h"
#include "kernels/cpu/cpu_features.h"

namespace flashlm::ops {

void rms_norm_reference(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  if (w != nullptr) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv;
  }
}

void rope(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base, float freq_scale,
          RopeStyle style, const float* freq_factors) {
  const int64_t half = n_rot / 2;
  // ggml's angles, float for float (ggml_rope_cache_init): theta_0 = pos, theta_{i+1} =
  // theta_i * powf(base, -2 / n_rot), angle = scale * (theta_i / factor_i), then cosf and
  // sinf. The recurrence drifts from pos * base^(-2i/n_rot) by about i float roundings
  // (1e-4 rad at position 1000); following it keeps our 8-bit activation rounding in
  // step with llama.cpp's, where an exact angle would flip near-tie roundings.
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < half; ++i) {
    const float ff = freq_factors != nullptr ? freq_factors[i] : 1.0f;
    const float angle = freq_scale * (theta / ff);
    const float c = std::cos(angle);
    const float s = std::sin(angle);
    const int64_t i0 = style == RopeStyle::kNorm ? 2 * i : i;
    const int64_t i1 = style == RopeStyle::kNorm ? 2 * i + 1 : i + half;
    const float a = x[i0], b = x[i1];
    x[i0] = a * c - b * s;
    x[i1] = a * s + b * c;
    theta *= theta_scale;
  }
  (void)head_dim;
}

void silu_mul_reference(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    y[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void gelu_tanh_mul_reference(const float* gate, const float* up, float* y, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    y[i] = 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g))) * up[i];
  }
}

void gelu_erf_reference(const float* x, float* y, int64_t n) {
  constexpr double kInvSqrt2 = 0.70710678118654752440;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(0.5 * v * std::erfc(-v * kInvSqrt2));  // = x Phi(x), no cancellation in the tail
  }
}

void add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

float softmax(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
  return mx + static_cast<float>(std::log(sum));
}

float logsumexp(const float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i] - mx));
  return mx + static_cast<float>(std::log(sum));
}

namespace {

float dot_scalar(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

using DotFn = float (*)(const float*, const float*, int64_t);

// Chosen once, at the first call (a function-local static: safe whatever order static
// initializers run in).
DotFn pick_dot() {
#if defined(FLASHLM_HAVE_AVX2)
  if (cpu_has_avx2()) return &avx2::dot_f32;
#endif
#if defined(FLASHLM_HAVE_NEON)
  if (cpu_has_neon()) return &neon::dot_f32;
#endif
  return &dot_scalar;
}

using NormFn = void (*)(const float*, const float*, float*, int64_t, float);
using BinaryFn = void (*)(const float*, const float*, float*, int64_t);
using UnaryFn = void (*)(const float*, float*, int64_t);

void exp_row_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

// The row ops with per-ISA versions, chosen once like dot.
struct RowOps {
  NormFn rms_norm;
  BinaryFn silu_mul;
  BinaryFn gelu_tanh_mul;
  UnaryFn gelu_erf;
  UnaryFn exp_row;
};

RowOps pick_row_ops() {
#if defined(FLASHLM_HAVE_AVX2)
  if (cpu_has_avx2()) {
    return {&avx2::rms_norm, &avx2::silu_mul, &avx2::gelu_tanh_mul, &avx2::gelu_erf, &avx2::exp_row};
  }
#endif
  return {&rms_norm_reference, &silu_mul_reference, &gelu_tanh_mul_reference, &gelu_erf_reference,
          &exp_row_scalar};
}

const RowOps& row_ops() {
  static const RowOps table = pick_row_ops();
  return table;
}

}  // namespace

float dot(const float* a, const float* b, int64_t n) {
  static const DotFn fn = pick_dot();
  return fn(a, b, n);
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) { row_ops().rms_norm(x, w, y, n, eps); }

void silu_mul(const float* gate, const float* up, float* y, int64_t n) { row_ops().silu_mul(gate, up, y, n); }

void gelu_tanh_mul(const float* gate, const float* up, float* y, int64_t n) {
  row_ops().gelu_tanh_mul(gate, up, y, n);
}

void gelu_erf(const float* x, float* y, int64_t n) { row_ops().gelu_erf(x, y, n); }

void exp_row(const float* x, float* y, int64_t n) { row_ops().exp_row(x, y, n); }

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace flashlm::ops
