// Quantizers for the K-quant weight formats Q4_K, Q5_K and Q6_K, with ggml's two methods:
// the reference one (quantize_row_*_K_ref: weights from the values themselves, sub-block
// scales and mins quantized against their maximum) and the importance-weighted one
// (quantize_row_*_K_impl with an imatrix: weights qw * sqrt(sigma2 + x^2), sub-block scales
// and mins themselves fitted by weighted least squares). Float arithmetic follows ggml
// step by step (quant_fit.h), so files match llama-quantize's with and without --imatrix.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/quant_fit.h"
#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::quant {
namespace {

constexpr int kSub45 = kQK_K / 32;  // Q4_K/Q5_K sub-blocks of 32
constexpr int kSub6 = kQK_K / 16;   // Q6_K sub-blocks of 16

// Sets the j-th (0..7) six-bit scale and min of a Q4_K/Q5_K block (k4_scale_min's
// inverse). Bytes j < 4 must be written before j + 4 ORs its high bits into them.
void k4_set_scale_min(int j, uint8_t ls, uint8_t lm, uint8_t* q) {
  if (j < 4) {
    q[j] = ls;
    q[j + 4] = lm;
  } else {
    q[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
    q[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
    q[j] |= static_cast<uint8_t>((lm >> 4) << 6);
  }
}

// Both methods end alike: every code again against the scales and mins as stored (fp16
// d and dmin times the six-bit values), so rounding those moves no element further than
// it must. Sub-blocks whose stored scale is 0 keep the fitted codes (they dequantize to
// -min whatever they are).
template <typename Block>
void requantize_k45(const float* x, const Block& b, int nmax, uint8_t* L) {
  for (int j = 0; j < kSub45; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, b.scales, &sc, &m);
    const float d = fp16_to_fp32(b.d) * sc;
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(b.dmin) * m;
    for (int ii = 0; ii < 32; ++ii) {
      L[32 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
    }
  }
}

// Reference method: each sub-block of 32 weighted by its RMS plus |x|; the scales and mins
// are then put on 0..63 against the largest of each.
template <typename Block>
void quantize_k45_ref(const float* x, Block& b, int nmax, float rmin, int nstep, uint8_t* L) {
  float scales[kSub45], mins[kSub45], w[32];
  float max_scale = 0, max_min = 0;  // the offset is subtracted, so scales are >= 0
  for (int j = 0; j < kSub45; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = fit_scale_min(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < kSub45; ++j) {
    // ggml narrows to uint8_t before the clamp; kept, so even a wrapped code agrees.
    const auto ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    const auto lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    k4_set_scale_min(j, std::min<uint8_t>(63, ls), std::min<uint8_t>(63, lm), b.scales);
  }
  b.d = fp32_to_fp16(max_scale / 63.f);
  b.dmin = fp32_to_fp16(max_min / 63.f);
  requantize_k45(x, b, nmax, L);
}

// Importance-weighted method: weights qw * sqrt(sigma2 + x^2) with sigma2 twice the
// block's mean square (so small values still count), a finer 37-grid search per
// sub-block, and the eight scales and eight mins fitted on 0..63 by weighted least squares
// (weights: each sub-block's total weight) instead of against their maximum. Q5_K clamps
// the six-bit codes to 63 where Q4_K does not (ggml's asymmetry; only a wrapped code
// could tell).
template <typename Block>
void quantize_k45_weighted(const float* x, const float* qw, Block& b, int nmax, bool clamp_codes, uint8_t* L) {
  float sum_x2 = 0;
  for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = 2 * sum_x2 / kQK_K;
  float scales[kSub45], mins[kSub45], sw[kSub45], w[32];
  for (int j = 0; j < kSub45; ++j) {
    for (int l = 0; l < 32; ++l) w[l] = qw[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += w[l];
    sw[j] = sumw;
    scales[j] = fit_scale_min(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], -0.9f, 0.05f, 36);
  }
  uint8_t Ls[kSub45], Lm[kSub45];
  const float d_block = fit_scale_pos(kSub45, 63, scales, sw, Ls);
  const float m_block = fit_scale_pos(kSub45, 63, mins, sw, Lm);
  for (int j = 0; j < kSub45; ++j) {
    const uint8_t ls = clamp_codes ? std::min<uint8_t>(63, Ls[j]) : Ls[j];
    const uint8_t lm = clamp_codes ? std::min<uint8_t>(63, Lm[j]) : Lm[j];
    k4_set_scale_min(j, ls, lm, b.scales);
  }
  b.d = fp32_to_fp16(d_block);
  b.dmin = fp32_to_fp16(m_block);
  requantize_k45(x, b, nmax, L);
}

// 64 elements per 32 bytes: low nibbles, then high nibbles.
void pack_q4_k(const uint8_t* L, BlockQ4_K& b) {
  uint8_t* q = b.qs;
  for (int j = 0; j < kQK_K; j += 64) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    q += 32;
  }
}

// Q4_K's nibble order; the fifth bits of sub-blocks 2k and 2k + 1 are bits 2k, 2k + 1 of qh.
void pack_q5_k(const uint8_t* L, BlockQ5_K& b) {
  std::memset(b.qh, 0, sizeof b.qh);
  uint8_t* ql = b.qs;
  uint8_t m1 = 1, m2 = 2;
  for (int n = 0; n < kQK_K; n += 64) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j], l2 = L[n + j + 32];
      if (l1 > 15) {
        l1 -= 16;
        b.qh[j] |= m1;
      }
      if (l2 > 15) {
        l2 -= 16;
        b.qh[j] |= m2;
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
    ql += 32;
  }
}

// Q6_K by either method: the two differ only in the weights of the per-sub-block search
// (x^2 for the reference, the imatrix entries themselves with one -- ggml does not mix in
// sigma2 here). The sixteen scales go on int8 against the largest in magnitude.
void quantize_q6_k(const float* x, const float* qw, BlockQ6_K& b) {
  int8_t L[kQK_K];
  float scales[kSub6];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < kSub6; ++ib) {
    scales[ib] = fit_scale_sym(16, 32, x + 16 * ib, qw ? qw + 16 * ib : nullptr, L + 16 * ib);
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  std::memset(&b, 0, sizeof b);
  if (max_abs_scale < kGroupMaxEps) return;  // all zero
  const float iscale = -128.f / max_scale;
  b.d = fp32_to_fp16(1 / iscale);
  for (int ib = 0; ib < kSub6; ++ib) b.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  for (int j = 0; j < kSub6; ++j) {  // codes again against the stored scales
    const float d = fp16_to_fp32(b.d) * b.scales[j];
    if (d == 0.0f) continue;
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
  }
  uint8_t* ql = b.ql;
  uint8_t* qh = b.qh;
  for (int j = 0; j < kQK_K; j += 128) {  // 128 elements: four runs of 32 share ql and qh bytes
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
      ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                   ((L[j + l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

}  // namespace

void quantize_block(const float* x, BlockQ4_K& b) {
  uint8_t L[kQK_K];
  quantize_k45_ref(x, b, 15, -1.0f, 20, L);
  pack_q4_k(L, b);
}

void quantize_block(const float* x, BlockQ5_K& b) {
  uint8_t L[kQK_K];
  quantize_k45_ref(x, b, 31, -0.5f, 15, L);
  pack_q5_k(L, b);
}

void quantize_block(const float* x, BlockQ6_K& b) { quantize_q6_k(x, nullptr, b); }

void quantize_block_weighted(const float* x, const float* qw, BlockQ4_K& b) {
  if (qw == nullptr) return quantize_block(x, b);
  uint8_t L[kQK_K];
  quantize_k45_weighted(x, qw, b, 15, /*clamp_codes=*/false, L);
  pack_q4_k(L, b);
}

void quantize_block_weighted(const float* x, const float* qw, BlockQ5_K& b) {
  if (qw == nullptr) return quantize_block(x, b);
  uint8_t L[kQK_K];
  quantize_k45_weighted(x, qw, b, 31, /*clamp_codes=*/true, L);
  pack_q5_k(L, b);
}

void quantize_block_weighted(const float* x, const float* qw, BlockQ6_K& b) { quantize_q6_k(x, qw, b); }

}  // namespace flashlm::quant
