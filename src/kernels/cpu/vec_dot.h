// Dot products of a weight row with an activation row quantized to the weight type's
// "vec_dot type", as llama.cpp computes them: the activation row is quantized once
// (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants, rounded to
// F16/BF16 for those, kept F32 for F32) and each weight block meets it in an integer dot
// product with one float multiply per block. Matching that rounding is what makes our
// logits agree with llama.cpp's, and integer blocks are also the fast CPU path.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/cpu_features.h"
#include "tensor/dtype.h"

namespace flashlm {

// Quantize n floats (n a multiple of the vec_dot type's block size) into dst.
using QuantizeRowFn = void (*)(const float* x, void* dst, int64_t n);
// Dot of n weights at w_row (any alignment) with an activation row from QuantizeRowFn.
using VecDotFn = float (*)(const void* w_row, const void* x_q, int64_t n);
// The same dot for kVecDotGroup activation rows at once, token t's row at
// x_q + t * x_stride: out[t] equals VecDotFn's result for that row bit for bit, but each
// weight block is unpacked once for the whole group (the prefill fast path).
using VecDotX8Fn = void (*)(const void* w_row, const void* x_q, size_t x_stride, int64_t n, float* out);
constexpr int64_t kVecDotGroup = 8;

struct VecDotTraits {
  DType vec_dot_type = DType::F32;    // format of the quantized activation row
  int64_t block_size = 0;             // elements per activation block
  size_t block_bytes = 0;             // bytes per activation block
  QuantizeRowFn quantize_row = nullptr;
  VecDotFn vec_dot = nullptr;         // null: no integer dot for this weight type
  VecDotX8Fn vec_dot_x8 = nullptr;    // null: callers loop over vec_dot instead
  size_t row_bytes(int64_t n) const { return static_cast<size_t>(n / block_size) * block_bytes; }
};

// The fastest kernels this CPU supports (chosen once, at first use): those of
// vec_dot_traits_for(cpu_best_isa(), weight_type).
const VecDotTraits& vec_dot_traits(DType weight_type);
// The kernels of one instruction-set level, the reference's where that level has none;
// null when !cpu_supports(isa). Lets tests check every level this CPU runs (plain NEON
// on a dotprod CPU, say), not only the one dispatched.
const VecDotTraits* vec_dot_traits_for(CpuIsa isa, DType weight_type);
// The scalar reference kernels, which the fast ones are tested against. Results equal
// ggml's generic C kernels up to float summation order (block sums are exact integers).
const VecDotTraits& vec_dot_traits_reference(DType weight_type);

}  // namespace flashlm
