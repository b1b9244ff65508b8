// Kernels compiled with -mavx2 -mfma -mf16c (kernels/cpu/avx2/*.cpp). Call them only
// when cpu_has_avx2() is true. Declarations only: this header must stay free of inline
// code, so nothing built with AVX2 flags can leak into other translation units.
// Each function has the signature and meaning of its scalar reference in vec_dot.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flashlm::avx2 {

float dot_f32(const float* a, const float* b, int64_t n);

// Activation rows for the legacy formats, bit-identical to the scalar x86-style
// quantize_row_q8_x86 in vec_dot.cpp (n a multiple of 32).
void quantize_row_q8_0(const float* x, void* dst, int64_t n);
void quantize_row_q8_1(const float* x, void* dst, int64_t n);
// Q8_K rows bit-identical to quant::quantize_row<BlockQ8_K> (n a multiple of 256).
void quantize_row_q8_K(const float* x, void* dst, int64_t n);

// Row ops with the meaning of their scalar references in ops.h (rms_norm_reference,
// silu_mul_reference, gelu_tanh_mul_reference); any n, y may alias an input.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void silu_mul(const float* gate, const float* up, float* y, int64_t n);
void gelu_tanh_mul(const float* gate, const float* up, float* y, int64_t n);
// y[i] = e^x[i] within 2 ulp (the exponential the activations use; exposed for tests).
void exp_row(const float* x, float* y, int64_t n);
void gelu_erf(const float* x, float* y, int64_t n);  // ops::gelu_erf's fast version

// w_row: n weights in the named format; x_q: the activation row in its vec_dot type.
float vec_dot_f16_f16(const void* w_row, const void* x_q, int64_t n);
float vec_dot_bf16_bf16(const void* w_row, const void* x_q, int64_t n);
float vec_dot_q4_0_q8_0(const void* w_row, const void* x_q, int64_t n);
float vec_dot_q4_1_q8_1(const void* w_row, const void* x_q, int64_t n);
float vec_dot_q5_0_q8_0(const void* w_row, const void* x_q, int64_t n);
float vec_dot_q5_1_q8_1(const void* w_row, const void* x_q, int64_t n);
float vec_dot_q8_0_q8_0(const void* w_row, const void* x_q, int64_t n);
float vec_dot_q4_K_q8_K(const void* w_row, const void* x_q, int64_t n);
float vec_dot_q5_K_q8_K(const void* w_row, const void* x_q, int64_t n);
float vec_dot_q6_K_q8_K(const void* w_row, const void* x_q, int64_t n);

// Eight tokens at once (VecDotX8Fn in vec_dot.h): token t's row at x_q + t * x_stride.
// Each result is bit-identical to the one-token kernel's for that token.
void vec_dot_q4_0_q8_0_x8(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);
void vec_dot_q4_1_q8_1_x8(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);
void vec_dot_q5_0_q8_0_x8(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);
void vec_dot_q5_1_q8_1_x8(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);
void vec_dot_q8_0_q8_0_x8(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);
void vec_dot_q4_K_q8_K_x8(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);
void vec_dot_q5_K_q8_K_x8(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);
void vec_dot_q6_K_q8_K_x8(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);

// Attention tile kernels (attention_avx2.cpp): the meaning of each is documented on
// AttnTileKernels in kernels/cpu/attention_tiles.h, whose scalar versions they match.
void attn_scores(const float* const* q, int n_rows, const float* const* k, int n_keys, int d, float* s, int lds);
void attn_softmax(float* s, int lds, int n_rows, int n_keys, const int* jb, const int* je, float scale,
                  float softcap, float* m, float* l, float* corr);
void attn_accumulate(const float* p, int ldp, int n_rows, const float* const* v, int n_keys, int d,
                     float* const* o, const float* corr);
void attn_exp(float* x, int64_t n);
// AttnTileKernels::load for one stored type each (any d for F16, a multiple of 32 for
// Q8_0).
void attn_load_f16(const void* const* rows, int n_rows, int d, float* dst);
void attn_load_q8_0(const void* const* rows, int n_rows, int d, float* dst);
// A K or V row into an f16 cache: F16C's round to nearest even, the scalar rounding's bits
// (quant::f16_from_float) for every non-NaN input.
void kv_store_f16(const float* src, void* dst, int64_t n);

}  // namespace flashlm::avx2
