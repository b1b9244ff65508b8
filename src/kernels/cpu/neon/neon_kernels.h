// Kernels for 64-bit ARM (kernels/cpu/neon/*.cpp). Advanced SIMD (NEON) is part of every
// ARMv8-A CPU, so everything here runs on any of them, except int_dot_kernels_dotprod():
// its translation unit is built with -march=armv8.2-a+dotprod (SDOT) and may be called
// only when cpu_has_neon_dotprod() is true (a Cortex-A76 / Raspberry Pi 5 has it, a
// Cortex-A72 / Raspberry Pi 4 does not). Declarations only, as in avx2_kernels.h: no
// inline code here may be compiled with the dotprod flags and leak into other files.
// Each function has the signature and meaning of its scalar reference in vec_dot.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flashlm::neon {

float dot_f32(const float* a, const float* b, int64_t n);
float vec_dot_f16_f16(const void* w_row, const void* x_q, int64_t n);
float vec_dot_bf16_bf16(const void* w_row, const void* x_q, int64_t n);

// Activation rows, bit-identical to the scalar reference quantizers: Q8_0/Q8_1 as
// vec_dot.cpp's quantize_row_q8_x86 (n a multiple of 32), Q8_K as quant_k.cpp's
// quantize_block (n a multiple of 256).
void quantize_row_q8_0(const float* x, void* dst, int64_t n);
void quantize_row_q8_1(const float* x, void* dst, int64_t n);
void quantize_row_q8_K(const float* x, void* dst, int64_t n);

// A weight format's integer dot product with its activation row: one token (VecDotFn)
// and eight at once (VecDotX8Fn: token t's row at x_q + t * x_stride, each result
// bit-identical to `one` for that token).
struct IntDot {
  float (*one)(const void* w_row, const void* x_q, int64_t n);
  void (*x8)(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);
};

struct IntDotKernels {
  IntDot q4_0, q4_1, q5_0, q5_1, q8_0;  // against Q8_0 (q4_0, q5_0, q8_0) or Q8_1
  IntDot q4_K, q5_K, q6_K;              // against Q8_K
};

// The same kernels built two ways: on plain ARMv8-A multiply-adds (any CPU) and on the
// ARMv8.2 dot-product instructions (only when cpu_has_neon_dotprod()).
const IntDotKernels& int_dot_kernels_base();
const IntDotKernels& int_dot_kernels_dotprod();

}  // namespace flashlm::neon
