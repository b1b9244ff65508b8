// The traits table: for each dtype its block size, bytes per block, and the scalar
// reference conversions and dot product. Fast kernels (kernels/cpu/<isa>) register
// against the same signatures and are tested against these references.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace flashlm {

// Dequantize n values (n a multiple of block_size) from blocks at src into dst.
using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
// Quantize n floats into blocks (may be null for formats we only read).
using FromFloatFn = void (*)(const float* src, void* dst, int64_t n);
// Reference dot product of one quantized row (n elements) with an f32 vector.
using DotF32Fn = float (*)(const void* row, const float* x, int64_t n);

struct TypeTraits {
  const char* name = nullptr;  // "q4_K" etc.; null for ids we do not support
  int64_t block_size = 0;      // elements per block
  size_t type_size = 0;        // bytes per block
  bool is_quantized = false;
  ToFloatFn to_float = nullptr;
  FromFloatFn from_float = nullptr;
  DotF32Fn dot_f32 = nullptr;
};

// Traits for a dtype id as found in a file; name == nullptr when unsupported.
const TypeTraits& type_traits(uint32_t type_id);
inline const TypeTraits& type_traits(DType t) { return type_traits(static_cast<uint32_t>(t)); }

// Bytes a row of n elements takes, or 0 if n is negative or not a multiple of the block
// size, the type is unsupported, or the size would not fit in size_t.
size_t row_size(DType t, int64_t n);

}  // namespace flashlm
