// Plain float formats: F32, F16, BF16. Values are read with memcpy because a row in a
// mapped file is only guaranteed to be byte-aligned.
#include <cstring>

#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::quant {

namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

}  // namespace

void f32_to_float(const void* src, float* dst, int64_t n) {
  if (n > 0) std::memcpy(dst, src, (size_t)n * sizeof(float));
}

void f32_from_float(const float* src, void* dst, int64_t n) {
  if (n > 0) std::memcpy(dst, src, (size_t)n * sizeof(float));
}

float f32_dot(const void* row, const float* x, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(row);
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    acc += (double)v * (double)x[i];
  }
  return (float)acc;
}

void f16_to_float(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load_u16(p + 2 * i));
}

void f16_from_float(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) store_u16(p + 2 * i, fp32_to_fp16(src[i]));
}

float f16_dot(const void* row, const float* x, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(row);
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += (double)fp16_to_fp32(load_u16(p + 2 * i)) * (double)x[i];
  return (float)acc;
}

void bf16_to_float(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(p + 2 * i));
}

void bf16_from_float(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) store_u16(p + 2 * i, fp32_to_bf16(src[i]));
}

float bf16_dot(const void* row, const float* x, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(row);
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += (double)bf16_to_fp32(load_u16(p + 2 * i)) * (double)x[i];
  return (float)acc;
}

}  // namespace flashlm::quant
