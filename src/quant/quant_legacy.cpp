// The 32-element "legacy" formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0. Dequantization and
// quantization mirror ggml's reference code (same float operations in the same order),
// so both directions are bit-exact against ggml and gguf-py.
#include <cmath>
#include <cstring>

#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::quant {

namespace {

// (int)v clamped to [lo, hi]: ggml's `MIN(hi, (int8_t)v)` for in-range v, but defined
// for every input (a NaN or huge value must not reach an out-of-range cast).
int trunc_clamp(float v, int lo, int hi) {
  if (!(v > (float)lo)) return lo;
  if (v >= (float)hi) return hi;
  return (int)v;
}

// roundf(v) (half away from zero) clamped to [lo, hi]; NaN gives 0.
int round_clamp(float v, int lo, int hi) {
  if (std::isnan(v)) return 0;
  if (v <= (float)lo) return lo;
  if (v >= (float)hi) return hi;
  return (int)std::roundf(v);
}

// The value of largest magnitude, keeping its sign (first one on ties, as ggml).
float signed_absmax(const float* x, int64_t n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, int64_t n, float* lo, float* hi) {
  *lo = x[0];
  *hi = x[0];
  for (int64_t j = 1; j < n; ++j) {
    if (x[j] < *lo) *lo = x[j];
    if (x[j] > *hi) *hi = x[j];
  }
}

uint32_t load_qh(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, 4);
  return v;
}

}  // namespace

// ---- dequantize ----

void dequantize_block(const BlockQ4_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  constexpr int64_t half = BlockQ4_0::kElems / 2;
  for (int64_t j = 0; j < half; ++j) {
    y[j] = (float)((b.qs[j] & 0x0F) - 8) * d;
    y[j + half] = (float)((b.qs[j] >> 4) - 8) * d;
  }
}

void dequantize_block(const BlockQ4_1& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float m = fp16_to_fp32(b.m);
  constexpr int64_t half = BlockQ4_1::kElems / 2;
  for (int64_t j = 0; j < half; ++j) {
    y[j] = (float)(b.qs[j] & 0x0F) * d + m;
    y[j + half] = (float)(b.qs[j] >> 4) * d + m;
  }
}

void dequantize_block(const BlockQ5_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const uint32_t qh = load_qh(b.qh);
  constexpr int64_t half = BlockQ5_0::kElems / 2;
  for (int64_t j = 0; j < half; ++j) {
    const int h0 = (int)((qh >> j) & 1u) << 4;
    const int h1 = (int)((qh >> (j + half)) & 1u) << 4;
    y[j] = (float)(((b.qs[j] & 0x0F) | h0) - 16) * d;
    y[j + half] = (float)(((b.qs[j] >> 4) | h1) - 16) * d;
  }
}

void dequantize_block(const BlockQ5_1& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float m = fp16_to_fp32(b.m);
  const uint32_t qh = load_qh(b.qh);
  constexpr int64_t half = BlockQ5_1::kElems / 2;
  for (int64_t j = 0; j < half; ++j) {
    const int h0 = (int)((qh >> j) & 1u) << 4;
    const int h1 = (int)((qh >> (j + half)) & 1u) << 4;
    y[j] = (float)((b.qs[j] & 0x0F) | h0) * d + m;
    y[j + half] = (float)((b.qs[j] >> 4) | h1) * d + m;
  }
}

void dequantize_block(const BlockQ8_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int64_t j = 0; j < BlockQ8_0::kElems; ++j) y[j] = (float)b.qs[j] * d;
}

// ---- quantize ----

void quantize_block(const float* x, BlockQ4_0& b) {
  constexpr int64_t half = BlockQ4_0::kElems / 2;
  const float d = signed_absmax(x, BlockQ4_0::kElems) / -8.0f;  // max maps to q = 0
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = fp32_to_fp16(d);
  for (int64_t j = 0; j < half; ++j) {
    const int q0 = trunc_clamp(x[j] * id + 8.5f, 0, 15);
    const int q1 = trunc_clamp(x[j + half] * id + 8.5f, 0, 15);
    b.qs[j] = (uint8_t)(q0 | (q1 << 4));
  }
}

void quantize_block(const float* x, BlockQ4_1& b) {
  constexpr int64_t half = BlockQ4_1::kElems / 2;
  float lo, hi;
  min_max(x, BlockQ4_1::kElems, &lo, &hi);
  const float d = (hi - lo) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = fp32_to_fp16(d);
  b.m = fp32_to_fp16(lo);
  for (int64_t j = 0; j < half; ++j) {
    const int q0 = trunc_clamp((x[j] - lo) * id + 0.5f, 0, 15);
    const int q1 = trunc_clamp((x[j + half] - lo) * id + 0.5f, 0, 15);
    b.qs[j] = (uint8_t)(q0 | (q1 << 4));
  }
}

void quantize_block(const float* x, BlockQ5_0& b) {
  constexpr int64_t half = BlockQ5_0::kElems / 2;
  const float d = signed_absmax(x, BlockQ5_0::kElems) / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = fp32_to_fp16(d);
  uint32_t qh = 0;
  for (int64_t j = 0; j < half; ++j) {
    const int q0 = trunc_clamp(x[j] * id + 16.5f, 0, 31);
    const int q1 = trunc_clamp(x[j + half] * id + 16.5f, 0, 31);
    b.qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= (uint32_t)(q0 >> 4) << j;
    qh |= (uint32_t)(q1 >> 4) << (j + half);
  }
  std::memcpy(b.qh, &qh, 4);
}

void quantize_block(const float* x, BlockQ5_1& b) {
  constexpr int64_t half = BlockQ5_1::kElems / 2;
  float lo, hi;
  min_max(x, BlockQ5_1::kElems, &lo, &hi);
  const float d = (hi - lo) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = fp32_to_fp16(d);
  b.m = fp32_to_fp16(lo);
  uint32_t qh = 0;
  for (int64_t j = 0; j < half; ++j) {
    const int q0 = trunc_clamp((x[j] - lo) * id + 0.5f, 0, 31);
    const int q1 = trunc_clamp((x[j + half] - lo) * id + 0.5f, 0, 31);
    b.qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= (uint32_t)(q0 >> 4) << j;
    qh |= (uint32_t)(q1 >> 4) << (j + half);
  }
  std::memcpy(b.qh, &qh, 4);
}

void quantize_block(const float* x, BlockQ8_0& b) {
  float amax = 0.0f;
  for (int64_t j = 0; j < BlockQ8_0::kElems; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = fp32_to_fp16(d);
  for (int64_t j = 0; j < BlockQ8_0::kElems; ++j) {
    b.qs[j] = (int8_t)round_clamp(x[j] * id, -127, 127);
  }
}

}  // namespace flashlm::quant
