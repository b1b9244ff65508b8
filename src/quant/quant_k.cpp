// The K-quants (256-element super-blocks with per-sub-block scales): Q2_K..Q6_K
// dequantization, plus Q8_K, the activation format their dot products use.
// Element order and float operation order follow ggml's dequantize_row_*_K, so the
// output is bit-identical to ggml/gguf-py.
#include <cmath>
#include <cstring>

#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::quant {

// Each 128-element half uses 32 bytes of qs; the four 2-bit planes of those bytes are
// 4 x 32 consecutive elements, each 32 split into two 16-element sub-blocks.
void dequantize_block(const BlockQ2_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float dmin = fp16_to_fp32(b.dmin);
  const uint8_t* q = b.qs;
  int is = 0;
  for (int64_t n = 0; n < kQK_K; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = b.scales[is++];
        const float dl = d * (float)(sc & 0xF);
        const float ml = dmin * (float)(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

// Same 2-bit plane order as Q2_K; bit `m` of hmask[l] (m stepping through all 8 bits
// over the block) set means "no -4 offset".
void dequantize_block(const BlockQ3_K& b, float* y) {
  const float d_all = fp16_to_fp32(b.d);
  // 16 six-bit scales: low 4 bits are the nibbles of bytes 0..7 (low nibbles first),
  // high 2 bits come from bytes 8..11, two bits per sub-block.
  int scales[16];
  for (int i = 0; i < 16; ++i) {
    const int lo = (b.scales[i % 8] >> (4 * (i / 8))) & 0xF;
    const int hi = (b.scales[8 + i % 4] >> (2 * (i / 4))) & 3;
    scales[i] = (lo | (hi << 4)) - 32;
  }
  const uint8_t* q = b.qs;
  uint8_t m = 1;
  int is = 0;
  for (int64_t n = 0; n < kQK_K; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * (float)scales[is++];
        for (int l = 16 * half; l < 16 * half + 16; ++l) {
          const int v = ((q[l] >> shift) & 3) - ((b.hmask[l] & m) ? 0 : 4);
          *y++ = dl * (float)v;
        }
      }
      m = (uint8_t)(m << 1);
    }
    q += 32;
  }
}

// 64 elements per step: 32 low nibbles with sub-block 2j, 32 high nibbles with 2j + 1.
void dequantize_block(const BlockQ4_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float dmin = fp16_to_fp32(b.dmin);
  const uint8_t* q = b.qs;
  for (int j = 0; j < 8; j += 2) {
    uint8_t sc, m;
    k4_scale_min(j, b.scales, &sc, &m);
    const float d1 = d * (float)sc;
    const float m1 = dmin * (float)m;
    k4_scale_min(j + 1, b.scales, &sc, &m);
    const float d2 = d * (float)sc;
    const float m2 = dmin * (float)m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * (float)(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * (float)(q[l] >> 4) - m2;
    q += 32;
  }
}

// Q4_K's order, with the fifth bit of sub-block s in bit s of qh[l].
void dequantize_block(const BlockQ5_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float dmin = fp16_to_fp32(b.dmin);
  const uint8_t* ql = b.qs;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < 8; j += 2) {
    uint8_t sc, m;
    k4_scale_min(j, b.scales, &sc, &m);
    const float d1 = d * (float)sc;
    const float m1 = dmin * (float)m;
    k4_scale_min(j + 1, b.scales, &sc, &m);
    const float d2 = d * (float)sc;
    const float m2 = dmin * (float)m;
    for (int l = 0; l < 32; ++l) {
      *y++ = d1 * (float)((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      *y++ = d2 * (float)((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
    }
    ql += 32;
    u1 = (uint8_t)(u1 << 2);
    u2 = (uint8_t)(u2 << 2);
  }
}

// Per 128 elements: 64 bytes of ql (low nibbles, then high nibbles) and 32 of qh
// (2 bits for each of four 32-element groups); 8 int8 scales, one per 16 elements.
void dequantize_block(const BlockQ6_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const uint8_t* ql = b.ql;
  const uint8_t* qh = b.qh;
  const int8_t* sc = b.scales;
  for (int64_t n = 0; n < kQK_K; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * (float)sc[is + 0] * (float)q1;
      y[l + 32] = d * (float)sc[is + 2] * (float)q2;
      y[l + 64] = d * (float)sc[is + 4] * (float)q3;
      y[l + 96] = d * (float)sc[is + 6] * (float)q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

void dequantize_block(const BlockQ8_K& b, float* y) {
  for (int64_t j = 0; j < kQK_K; ++j) y[j] = b.d * (float)b.qs[j];
}

// ggml's quantize_row_q8_K_ref: scale -127/max (the signed absmax maps to -127, not
// -128, which the SIMD kernels rely on), round half to even, block sums for the mins.
void quantize_block(const float* x, BlockQ8_K& b) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int64_t j = 0; j < kQK_K; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  std::memset(&b, 0, sizeof(b));
  if (amax == 0.0f || !std::isfinite(amax)) return;  // zeros (ggml) or no usable scale
  const float iscale = -127.0f / max;
  for (int64_t j = 0; j < kQK_K; ++j) {
    const float v = iscale * x[j];
    // Round half to even like ggml's nearest_int; |v| <= 127 up to rounding.
    int q = std::isnan(v) ? 0 : (int)std::nearbyint(std::fmax(-128.0f, std::fmin(127.0f, v)));
    b.qs[j] = (int8_t)q;
  }
  for (int64_t j = 0; j < kQK_K / 16; ++j) {
    int sum = 0;
    for (int64_t i = 0; i < 16; ++i) sum += b.qs[16 * j + i];
    b.bsums[j] = (int16_t)sum;
  }
  b.d = 1.0f / iscale;
}

}  // namespace flashlm::quant
