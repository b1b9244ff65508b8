// The 32-element "legacy" formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0. Dequantization and
// quantization mirror ggml's reference code (same float operations in the same order),
// so both directions are bit-exact against ggml and gguf-py.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::quant {

namespace {

// C's (int8_t)v as compilers emit it for x86-64 (cvttss2si, then the low byte): truncation
// toward zero, and 0 for NaN, infinities and anything outside int32. ggml's reference
// quantizers cast this way, undefined in C only when 1 / d overflowed -- a block whose
// largest magnitude is below about 2^-125, so d rounds to fp16 zero and every code
// dequantizes alike. Only bytes depend on it there; x86's answer keeps them identical to
// llama-quantize's on x86, and here it is defined on every machine.
int c_cast_int8(float v) {
  if (!(v > -2147483648.0f && v < 2147483648.0f)) return 0;
  return static_cast<int8_t>(static_cast<int32_t>(v));
}

// ggml's `MIN(hi, (int8_t)v)` stored into a uint8_t code.
uint8_t code_min(int hi, float v) { return static_cast<uint8_t>(std::min(hi, c_cast_int8(v))); }

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
  *lo = FLT_MAX;
  *hi = -FLT_MAX;
  for (int64_t j = 0; j < n; ++j) {
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
    const int q0 = code_min(15, x[j] * id + 8.5f);
    const int q1 = code_min(15, x[j + half] * id + 8.5f);
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
    const int q0 = code_min(15, (x[j] - lo) * id + 0.5f);
    const int q1 = code_min(15, (x[j + half] - lo) * id + 0.5f);
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
    const int q0 = code_min(31, x[j] * id + 16.5f);
    const int q1 = code_min(31, x[j + half] * id + 16.5f);
    b.qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= ((q0 & 0x10u) >> 4) << j;
    qh |= ((q1 & 0x10u) >> 4) << (j + half);
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
    const int q0 = static_cast<uint8_t>(c_cast_int8((x[j] - lo) * id + 0.5f));
    const int q1 = static_cast<uint8_t>(c_cast_int8((x[j + half] - lo) * id + 0.5f));
    b.qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= ((q0 & 0x10u) >> 4) << j;
    qh |= ((q1 & 0x10u) >> 4) << (j + half);
  }
  std::memcpy(b.qh, &qh, 4);
}

void quantize_block(const float* x, BlockQ8_0& b) {
  float amax = 0.0f;
  for (int64_t j = 0; j < BlockQ8_0::kElems; ++j) {
    const float ax = std::fabs(x[j]);
    amax = amax > ax ? amax : ax;  // ggml's MAX (a NaN is dropped again by a later value)
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = fp32_to_fp16(d);
  for (int64_t j = 0; j < BlockQ8_0::kElems; ++j) {
    b.qs[j] = static_cast<int8_t>(c_cast_int8(std::roundf(x[j] * id)));
  }
}

}  // namespace flashlm::quant
