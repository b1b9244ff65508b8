// Quantizers for the 2- and 3-bit K-quants, Q2_K and Q3_K, with ggml's reference method
// (quantize_row_q{2,3}_K_ref) and its importance-weighted one (quantize_row_q{2,3}_K_impl,
// what llama-quantize --imatrix runs). Both formats cut a 256-element block into 16
// sub-blocks of 16 with a four-bit (Q2_K: scale and min) or six-bit (Q3_K: signed scale)
// code per sub-block. Float arithmetic follows ggml step by step (quant_fit.h), so the
// bytes are ggml's.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/quant_fit.h"
#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::quant {
namespace {

constexpr int kSub = kQK_K / 16;  // sub-blocks of 16

// Four 2-bit planes per 32 bytes: byte l of each 128-element half holds elements l,
// l + 32, l + 64 and l + 96 (the order dequantize_block reads).
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

// ---- Q2_K: x = d * (scales & 15) * q - dmin * (scales >> 4), q in 0..3 ----

// Codes again against the stored scales and mins, then packed. A sub-block whose stored
// scale is 0 keeps its fitted codes (it dequantizes to -min whatever they are).
void finish_q2_k(const float* x, BlockQ2_K& b, uint8_t* L) {
  const float dall = fp16_to_fp32(b.d), mall = fp16_to_fp32(b.dmin);
  for (int j = 0; j < kSub; ++j) {
    const float d = dall * (b.scales[j] & 0xF);
    if (d == 0.0f) continue;
    const float dm = mall * (b.scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
    }
  }
  pack_2bit(L, b.qs);
}

// ggml narrows the four-bit codes to uint8_t without clamping (they are <= 15 because
// every scale is <= the largest); the narrowing is kept so the bytes agree regardless.
uint8_t narrow(int l) { return static_cast<uint8_t>(l); }

// ---- Q3_K: x = d * (scale6 - 32) * (q3 - 4), q3's top bit in hmask ----

// Puts six-bit code l (0..63) of sub-block j into the 12 packed bytes: low nibbles in
// bytes 0..7 (sub-blocks 8..15 in the high nibbles), the top two bits in bytes 8..11.
void q3_set_scale(int j, int l, uint8_t* scales) {
  if (j < 8) {
    scales[j] = static_cast<uint8_t>(l & 0xF);
  } else {
    scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
  }
  scales[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
}

int q3_get_scale(int j, const uint8_t* scales) {
  const int lo = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  return (lo | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

// Codes again against the stored scales; then the top bit of each code goes to hmask
// (bit k of hmask[m] for element 32 k + m) and the low two bits to the planes of qs.
void finish_q3_k(const float* x, BlockQ3_K& b, int8_t* L) {
  for (int j = 0; j < kSub; ++j) {
    const float d = fp16_to_fp32(b.d) * static_cast<float>(q3_get_scale(j, b.scales));
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
    }
  }
  std::memset(b.hmask, 0, sizeof b.hmask);
  uint8_t L2[kQK_K];
  for (int j = 0; j < kQK_K; ++j) {
    const int m = j % (kQK_K / 8);
    const int bit = j / (kQK_K / 8);
    int l = L[j];
    if (l > 3) {
      b.hmask[m] |= static_cast<uint8_t>(1u << bit);
      l -= 4;
    }
    L2[j] = static_cast<uint8_t>(l);
  }
  pack_2bit(L2, b.qs);
}

}  // namespace

// Reference Q2_K: per sub-block a 16-grid search weighted by |x| scoring the absolute
// error (ggml's choice for 2 bits), then scales and mins on 0..15 against their largest.
void quantize_block(const float* x, BlockQ2_K& b) {
  uint8_t L[kQK_K];
  float scales[kSub], mins[kSub], w[16];
  float max_scale = 0, max_min = 0;  // the offset is subtracted, so scales are >= 0
  for (int j = 0; j < kSub; ++j) {
    for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * j + l]);
    scales[j] = fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, FitError::kAbsolute);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  constexpr float q4scale = 15.f;
  std::memset(b.scales, 0, sizeof b.scales);
  b.d = 0;
  b.dmin = 0;
  if (max_scale > 0) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < kSub; ++j) b.scales[j] = narrow(nearest_int(iscale * scales[j]));
    b.d = fp32_to_fp16(max_scale / q4scale);
  }
  if (max_min > 0) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < kSub; ++j) {
      // Shifted as unsigned: a (never expected) negative code must not be a signed shift.
      b.scales[j] |= static_cast<uint8_t>(static_cast<unsigned>(nearest_int(iscale * mins[j])) << 4);
    }
    b.dmin = fp32_to_fp16(max_min / q4scale);
  }
  finish_q2_k(x, b, L);
}

// Weighted Q2_K: weights qw * sqrt(sigma2 + x^2) (sigma2 the block's mean square), a
// 37-grid search on the squared error, and the sixteen scales and mins fitted on 0..15 by
// weighted least squares (weights: each sub-block's total weight).
void quantize_block_weighted(const float* x, const float* qw, BlockQ2_K& b) {
  if (qw == nullptr) return quantize_block(x, b);
  uint8_t L[kQK_K];
  float scales[kSub], mins[kSub], sw[kSub], w[16];
  float sumx2 = 0;
  for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = sumx2 / kQK_K;
  for (int j = 0; j < kSub; ++j) {
    for (int l = 0; l < 16; ++l) w[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    sw[j] = 0;
    for (int l = 0; l < 16; ++l) sw[j] += w[l];
    scales[j] = fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.9f, 0.05f, 36);
  }
  uint8_t Ls[kSub], Lm[kSub];
  const float dm = fit_scale_pos(kSub, 15, scales, sw, Ls);
  const float mm = fit_scale_pos(kSub, 15, mins, sw, Lm);
  b.d = fp32_to_fp16(dm);
  b.dmin = fp32_to_fp16(mm);
  for (int j = 0; j < kSub; ++j) b.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
  finish_q2_k(x, b, L);
}

// Reference Q3_K: per sub-block a symmetric search refined code by code (weights x^2),
// then the signed scales on -32..31 against the one largest in magnitude.
void quantize_block(const float* x, BlockQ3_K& b) {
  int8_t L[kQK_K];
  float scales[kSub];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < kSub; ++j) {
    scales[j] = fit_scale_sym_iter(16, 4, x + 16 * j, L + 16 * j);
    if (std::fabs(scales[j]) > amax) {
      amax = std::fabs(scales[j]);
      max_scale = scales[j];
    }
  }
  std::memset(b.scales, 0, sizeof b.scales);
  b.d = 0;
  if (max_scale != 0) {
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < kSub; ++j) {
      // ggml narrows to int8_t before clamping; |iscale * scale| <= 32, so only a
      // non-finite scale could wrap, and it wraps the same way here.
      const int l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
      q3_set_scale(j, std::clamp(l, -32, 31) + 32, b.scales);
    }
    b.d = fp32_to_fp16(1 / iscale);
  }
  finish_q3_k(x, b, L);
}

// Weighted Q3_K: weights qw * sqrt(sigma2 + x^2) (sigma2 twice the block's mean square)
// for the per-sub-block search, and the sixteen scales themselves fitted on -32..31 by the
// same weighted search with each sub-block's total weight.
void quantize_block_weighted(const float* x, const float* qw, BlockQ3_K& b) {
  if (qw == nullptr) return quantize_block(x, b);
  int8_t L[kQK_K];
  float scales[kSub], sw[kSub], w[16];
  float sumx2 = 0;
  for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = 2 * sumx2 / kQK_K;
  for (int j = 0; j < kSub; ++j) {
    for (int l = 0; l < 16; ++l) w[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 16; ++l) sumw += w[l];
    sw[j] = sumw;
    scales[j] = fit_scale_sym(16, 4, x + 16 * j, w, L + 16 * j);
  }
  int8_t Ls[kSub];
  const float d_block = fit_scale_sym(kSub, 32, scales, sw, Ls);
  std::memset(b.scales, 0, sizeof b.scales);
  for (int j = 0; j < kSub; ++j) q3_set_scale(j, Ls[j], b.scales);
  b.d = fp32_to_fp16(d_block);
  finish_q3_k(x, b, L);
}

}  // namespace flashlm::quant
