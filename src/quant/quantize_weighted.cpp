// The row-level importance-weighted quantizers of quantize_weighted.h: the legacy 32-element
// formats (ggml's quantize_row_q{4,5}_{0,1}_impl) here, the K-quants' blocks in
// quantize_k23.cpp and quantize_k.cpp. Float arithmetic follows ggml step by step.
#include "quant/quantize_weighted.h"

#include <cmath>
#include <cstring>

#include "quant/quant_fit.h"
#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::quant {
namespace {

constexpr int kQK = 32;  // elements per legacy block

// Legacy blocks from their final weights w[32]. Q4_0/Q5_0 fit a symmetric scale (the
// weighted search of Q6_K's sub-blocks); Q4_1/Q5_1 a scale and offset (the weighted
// search of the K-quants). Unlike the reference method the scale is refitted by least
// squares, so d need not put the largest value on the end code.

void quantize_legacy_weighted(const float* x, const float* w, BlockQ4_0& b) {
  int8_t L[kQK];
  b.d = fp32_to_fp16(fit_scale_sym(kQK, 8, x, w, L));
  for (int j = 0; j < kQK / 2; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kQK / 2] << 4));
}

void quantize_legacy_weighted(const float* x, const float* w, BlockQ4_1& b) {
  uint8_t L[kQK];
  float min;
  b.d = fp32_to_fp16(fit_scale_min(kQK, 15, x, w, L, &min, -0.9f, 0.05f, 36));
  b.m = fp32_to_fp16(-min);
  for (int j = 0; j < kQK / 2; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kQK / 2] << 4));
}

// Five-bit codes: the low nibbles as in Q4_*, bit 4 of element j in bit j of qh.
void pack_5bit(const uint8_t* L, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t x0 = L[j], x1 = L[j + kQK / 2];
    qs[j] = static_cast<uint8_t>((x0 & 0x0F) | ((x1 & 0x0F) << 4));
    qh |= ((x0 & 0x10u) >> 4) << j;
    qh |= ((x1 & 0x10u) >> 4) << (j + kQK / 2);
  }
  std::memcpy(qh_bytes, &qh, sizeof qh);
}

void quantize_legacy_weighted(const float* x, const float* w, BlockQ5_0& b) {
  int8_t L[kQK];
  b.d = fp32_to_fp16(fit_scale_sym(kQK, 16, x, w, L));
  uint8_t U[kQK];
  for (int j = 0; j < kQK; ++j) U[j] = static_cast<uint8_t>(L[j]);
  pack_5bit(U, b.qs, b.qh);
}

void quantize_legacy_weighted(const float* x, const float* w, BlockQ5_1& b) {
  uint8_t L[kQK];
  float min;
  b.d = fp32_to_fp16(fit_scale_min(kQK, 31, x, w, L, &min, -0.9f, 0.05f, 36));
  b.m = fp32_to_fp16(-min);
  pack_5bit(L, b.qs, b.qh);
}

// Blocks are memcpy'd out because y need not be aligned for the struct.
template <typename Block>
void store_block(const Block& b, void* y, int64_t i) {
  std::memcpy(static_cast<uint8_t*>(y) + i * static_cast<int64_t>(sizeof(Block)), &b, sizeof(Block));
}

// Legacy rows: the weights are qw * sqrt(sigma2 + x^2) with sigma2 the mean square of the
// whole row, so the row is one unit.
template <typename Block>
void quantize_row_legacy_weighted(const float* x, void* y, int64_t n, const float* qw) {
  if (qw == nullptr) return quantize_row<Block>(x, y, n);
  float sum_x2 = 0;
  for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
  const float sigma2 = sum_x2 / static_cast<float>(n);
  float w[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    const float* qb = qw + i * kQK;
    for (int j = 0; j < kQK; ++j) w[j] = qb[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    Block b;
    quantize_legacy_weighted(xb, w, b);
    store_block(b, y, i);
  }
}

// K-quant rows: block by block (each block's weights use only its own values).
template <typename Block>
void quantize_row_k_weighted(const float* x, void* y, int64_t n, const float* qw) {
  for (int64_t i = 0; i < n / Block::kElems; ++i) {
    Block b;
    quantize_block_weighted(x + i * Block::kElems, qw ? qw + i * Block::kElems : nullptr, b);
    store_block(b, y, i);
  }
}

}  // namespace

QuantizeRowWeightedFn quantize_row_weighted(DType t) {
  switch (t) {
    case DType::Q4_0: return &quantize_row_legacy_weighted<BlockQ4_0>;
    case DType::Q4_1: return &quantize_row_legacy_weighted<BlockQ4_1>;
    case DType::Q5_0: return &quantize_row_legacy_weighted<BlockQ5_0>;
    case DType::Q5_1: return &quantize_row_legacy_weighted<BlockQ5_1>;
    case DType::Q2_K: return &quantize_row_k_weighted<BlockQ2_K>;
    case DType::Q3_K: return &quantize_row_k_weighted<BlockQ3_K>;
    case DType::Q4_K: return &quantize_row_k_weighted<BlockQ4_K>;
    case DType::Q5_K: return &quantize_row_k_weighted<BlockQ5_K>;
    case DType::Q6_K: return &quantize_row_k_weighted<BlockQ6_K>;
    default: return nullptr;  // float types and Q8_0 (ggml ignores an imatrix there), Q8_K, unknown ids
  }
}

}  // namespace flashlm::quant
