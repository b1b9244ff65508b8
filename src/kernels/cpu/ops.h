// Element-wise and row-wise CPU ops. Rows are contiguous float arrays; callers own all
// memory. Ops with a per-ISA version (kernels/cpu/avx2) pick it at the first call; their
// scalar references, which those versions are tested against, end in _reference.
#pragma once

#include <cstdint>

namespace flashlm::ops {

// y = x / rms(x) * w   (w may be null: no scale). y may alias x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void rms_norm_reference(const float* x, const float* w, float* y, int64_t n, float eps);

// RoPE in place on one head vector of `head_dim` floats at position `pos`.
// kNorm rotates adjacent pairs (x[2i], x[2i+1]); kNeox rotates (x[i], x[i + d/2]).
// Only the first `n_rot` dims are rotated. freq_factors (may be null) divide each
// pair's frequency (Llama 3.1 long-context scaling).
enum class RopeStyle { kNorm, kNeox };
void rope(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base, float freq_scale,
          RopeStyle style, const float* freq_factors);

// y may alias gate or up. The fast versions agree with the references to about 1e-6
// relative (their exponential is within 2 ulp of std::exp); for GELU at negative g, up
// to the reference's own rounding of 1 + tanh(z), which the fast one avoids.
void silu_mul(const float* gate, const float* up, float* y, int64_t n);       // silu(g) * u
void gelu_tanh_mul(const float* gate, const float* up, float* y, int64_t n);  // gelu(g) * u
void silu_mul_reference(const float* gate, const float* up, float* y, int64_t n);
void gelu_tanh_mul_reference(const float* gate, const float* up, float* y, int64_t n);
// y = gelu(x) = x * Phi(x) with the exact normal CDF (erf), BERT's "gelu". The fast
// version takes erfc from an exponential and a degree-9 polynomial (relative error below
// 1.2e-7) and agrees with the reference to about 2e-7 relative. y may alias x.
void gelu_erf(const float* x, float* y, int64_t n);
void gelu_erf_reference(const float* x, float* y, int64_t n);
// y = e^x element-wise (within a couple of ulp of std::exp). y may alias x.
void exp_row(const float* x, float* y, int64_t n);
void add(const float* a, const float* b, float* y, int64_t n);
void scale(float* x, float s, int64_t n);

// Numerically stable softmax in place; returns log(sum(exp)) + max (the logsumexp).
float softmax(float* x, int64_t n);
float logsumexp(const float* x, int64_t n);

// Dot product of two float vectors, with several partial sums so the compiler can keep
// them in vector registers.
float dot(const float* a, const float* b, int64_t n);
// y += a * x
void axpy(float a, const float* x, float* y, int64_t n);

}  // namespace flashlm::ops
