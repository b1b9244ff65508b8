// Quantization blocks, byte-for-byte as ggml lays them out in GGUF files. Each struct is
// POD with no padding (checked by static_assert), so a block can be memcpy'd out of a
// mapped file. Fields named `d`/`dmin`/`m` hold IEEE half bits (see util/fp16.h).
//
// Blocks in a file are only 2-byte aligned at best (18-byte Q4_0 blocks follow each
// other), so the reference code copies each block out with memcpy instead of casting.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flashlm::quant {

constexpr int64_t kQK4_0 = 32;
constexpr int64_t kQK4_1 = 32;
constexpr int64_t kQK5_0 = 32;
constexpr int64_t kQK5_1 = 32;
constexpr int64_t kQK8_0 = 32;
constexpr int64_t kQK_K = 256;        // super-block size of the K-quants
constexpr int64_t kKScaleSize = 12;   // packed 6-bit scales/mins of Q4_K and Q5_K

// x = d * (q - 8), q in [0, 15]. qs[j] holds element j (low nibble) and j + 16 (high).
struct BlockQ4_0 {
  static constexpr int64_t kElems = kQK4_0;  // elements per block
  uint16_t d;
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "ggml block_q4_0");

// x = d * q + m, q in [0, 15]; same nibble order as Q4_0.
struct BlockQ4_1 {
  static constexpr int64_t kElems = kQK4_1;  // elements per block
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "ggml block_q4_1");

// x = d * (q - 16), q 5 bits: low 4 as in Q4_0, bit 4 of element j is bit j of qh
// (read as a little-endian uint32).
struct BlockQ5_0 {
  static constexpr int64_t kElems = kQK5_0;  // elements per block
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "ggml block_q5_0");

// x = d * q + m with Q5_0's bit layout.
struct BlockQ5_1 {
  static constexpr int64_t kElems = kQK5_1;  // elements per block
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "ggml block_q5_1");

// x = d * q, q signed 8-bit.
struct BlockQ8_0 {
  static constexpr int64_t kElems = kQK8_0;  // elements per block
  uint16_t d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34, "ggml block_q8_0");

// Activations for Q4_1/Q5_1 dot products: x = d * q, and s = d * sum(qs) rounded to
// half, so a weight block's offset m contributes m * s with one product per block.
struct BlockQ8_1 {
  static constexpr int64_t kElems = kQK8_0;  // elements per block (QK8_1 == 32)
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_1) == 36, "ggml block_q8_1");

// 16 sub-blocks of 16; x = d * (scales & 15) * q - dmin * (scales >> 4), q 2 bits.
struct BlockQ2_K {
  static constexpr int64_t kElems = kQK_K;  // elements per block
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84, "ggml block_q2_K");

// 16 sub-blocks of 16; x = d * (scale6 - 32) * (q2 - (hmask bit ? 0 : 4)).
struct BlockQ3_K {
  static constexpr int64_t kElems = kQK_K;  // elements per block
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];  // 16 six-bit scales
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110, "ggml block_q3_K");

// 8 sub-blocks of 32; x = d * sc * q - dmin * m, six-bit sc/m packed in scales.
struct BlockQ4_K {
  static constexpr int64_t kElems = kQK_K;  // elements per block
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "ggml block_q4_K");

// Q4_K plus a fifth bit per element in qh.
struct BlockQ5_K {
  static constexpr int64_t kElems = kQK_K;  // elements per block
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "ggml block_q5_K");

// 16 sub-blocks of 16; x = d * scales[i] * (q6 - 32).
struct BlockQ6_K {
  static constexpr int64_t kElems = kQK_K;  // elements per block
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210, "ggml block_q6_K");

// Activations for K-quant dot products: x = d * q; bsums[i] = sum of qs[16 i .. 16 i + 15]
// (lets kernels fold the K-quants' min terms in without touching qs again).
struct BlockQ8_K {
  static constexpr int64_t kElems = kQK_K;  // elements per block
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292, "ggml block_q8_K");

}  // namespace flashlm::quant
