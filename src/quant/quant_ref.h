// Scalar reference (de)quantization of single blocks, and the row-level wrappers the
// traits table points at. These follow ggml's reference C code operation for operation
// (same products, same order) so results are bit-identical to ggml's and gguf-py's;
// fast kernels are tested against them.
#pragma once

#include <cstdint>
#include <cstring>

#include "quant/blocks.h"

namespace flashlm::quant {

// Dequantize one block into y[Block::kElems].
void dequantize_block(const BlockQ4_0& b, float* y);
void dequantize_block(const BlockQ4_1& b, float* y);
void dequantize_block(const BlockQ5_0& b, float* y);
void dequantize_block(const BlockQ5_1& b, float* y);
void dequantize_block(const BlockQ8_0& b, float* y);
void dequantize_block(const BlockQ8_1& b, float* y);  // ignores s (it is derived from qs)
void dequantize_block(const BlockQ2_K& b, float* y);
void dequantize_block(const BlockQ3_K& b, float* y);
void dequantize_block(const BlockQ4_K& b, float* y);
void dequantize_block(const BlockQ5_K& b, float* y);
void dequantize_block(const BlockQ6_K& b, float* y);
void dequantize_block(const BlockQ8_K& b, float* y);

// Quantize x[Block::kElems] into one block with ggml's reference rounding. Non-finite
// inputs give unspecified (but defined, in-range) codes rather than undefined behaviour.
void quantize_block(const float* x, BlockQ4_0& b);
void quantize_block(const float* x, BlockQ4_1& b);
void quantize_block(const float* x, BlockQ5_0& b);
void quantize_block(const float* x, BlockQ5_1& b);
void quantize_block(const float* x, BlockQ8_0& b);
void quantize_block(const float* x, BlockQ8_1& b);
void quantize_block(const float* x, BlockQ8_K& b);
// K-quant weights without an importance matrix (quantize_k23.cpp, quantize_k.cpp):
// ggml's reference method (quantize_row_*_K_ref), what llama-quantize does without --imatrix.
void quantize_block(const float* x, BlockQ2_K& b);
void quantize_block(const float* x, BlockQ3_K& b);
void quantize_block(const float* x, BlockQ4_K& b);
void quantize_block(const float* x, BlockQ5_K& b);
void quantize_block(const float* x, BlockQ6_K& b);
// K-quant weights with importance qw[Block::kElems] for this block's columns (the block's
// slice of an imatrix row): ggml's weighted method (quantize_row_*_K_impl), which works
// block by block. qw == nullptr: the reference method above. Row-level entry points for
// every weighted type, the legacy ones included, are in quantize_weighted.h.
void quantize_block_weighted(const float* x, const float* qw, BlockQ2_K& b);
void quantize_block_weighted(const float* x, const float* qw, BlockQ3_K& b);
void quantize_block_weighted(const float* x, const float* qw, BlockQ4_K& b);
void quantize_block_weighted(const float* x, const float* qw, BlockQ5_K& b);
void quantize_block_weighted(const float* x, const float* qw, BlockQ6_K& b);

// Unpacks the j-th (0..7) six-bit scale and min of a Q4_K/Q5_K block.
inline void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Row wrappers. n must be a multiple of Block::kElems (callers check with row_size());
// a trailing partial block is ignored. Blocks are memcpy'd out because rows in a
// mapped file need not be aligned for the struct.
template <typename Block>
void dequantize_row(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / Block::kElems; ++i) {
    Block b;
    std::memcpy(&b, p + i * (int64_t)sizeof(Block), sizeof(Block));
    dequantize_block(b, dst + i * Block::kElems);
  }
}

template <typename Block>
void quantize_row(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / Block::kElems; ++i) {
    Block b;
    quantize_block(src + i * Block::kElems, b);
    std::memcpy(p + i * (int64_t)sizeof(Block), &b, sizeof(Block));
  }
}

// Dot product of a quantized row with x. Each dequantized value is exactly what
// dequantize_row gives; products of two floats are exact in double, and the double
// sum keeps the reference well below the error any float kernel will have.
template <typename Block>
float dot_row(const void* row, const float* x, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(row);
  double acc = 0.0;
  float y[Block::kElems];
  for (int64_t i = 0; i < n / Block::kElems; ++i) {
    Block b;
    std::memcpy(&b, p + i * (int64_t)sizeof(Block), sizeof(Block));
    dequantize_block(b, y);
    const float* xb = x + i * Block::kElems;
    for (int64_t j = 0; j < Block::kElems; ++j) acc += (double)y[j] * (double)xb[j];
  }
  return (float)acc;
}

// Plain float formats (block size 1).
void f32_to_float(const void* src, float* dst, int64_t n);
void f32_from_float(const float* src, void* dst, int64_t n);
float f32_dot(const void* row, const float* x, int64_t n);
void f16_to_float(const void* src, float* dst, int64_t n);
void f16_from_float(const float* src, void* dst, int64_t n);
float f16_dot(const void* row, const float* x, int64_t n);
void bf16_to_float(const void* src, float* dst, int64_t n);
void bf16_from_float(const float* src, void* dst, int64_t n);
float bf16_dot(const void* row, const float* x, int64_t n);

}  // namespace flashlm::quant
