// Float dot products on Advanced SIMD (every ARMv8-A CPU): f32 rows, and f16/bf16 rows
// widened to f32 on the fly. Products and sums are in f32 with four independent
// accumulators; the scalar references sum in double, so results differ from them only
// by float rounding, which the tests bound. Rows need no alignment beyond their type's.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/neon/neon_kernels.h"

namespace flashlm::neon {
namespace {

float half_at(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return static_cast<float>(h);
}

float bf16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The two float32x4 halves of eight 2-byte values.
struct Widen8 {
  float32x4_t lo, hi;
};

Widen8 widen_f16(const uint8_t* p) {
  const float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(p));
  return {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
}

// bf16 is the top half of an f32: shift each value into place.
Widen8 widen_bf16(const uint8_t* p) {
  const uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(p));
  return {vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)), vreinterpretq_f32_u32(vshll_high_n_u16(h, 16))};
}

template <Widen8 (*Widen)(const uint8_t*), float (*Scalar)(const uint8_t*)>
float dot_half(const void* w_row, const void* x_q, int64_t n) {
  const auto* a = static_cast<const uint8_t*>(w_row);
  const auto* b = static_cast<const uint8_t*>(x_q);
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const Widen8 a0 = Widen(a + 2 * i), b0 = Widen(b + 2 * i);
    const Widen8 a1 = Widen(a + 2 * i + 16), b1 = Widen(b + 2 * i + 16);
    acc[0] = vfmaq_f32(acc[0], a0.lo, b0.lo);
    acc[1] = vfmaq_f32(acc[1], a0.hi, b0.hi);
    acc[2] = vfmaq_f32(acc[2], a1.lo, b1.lo);
    acc[3] = vfmaq_f32(acc[3], a1.hi, b1.hi);
  }
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  for (; i < n; ++i) s += Scalar(a + 2 * i) * Scalar(b + 2 * i);
  return s;
}

}  // namespace

float dot_f32(const float* a, const float* b, int64_t n) {
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 4; ++k) acc[k] = vfmaq_f32(acc[k], vld1q_f32(a + i + 4 * k), vld1q_f32(b + i + 4 * k));
  }
  for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], vld1q_f32(a + i), vld1q_f32(b + i));
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float vec_dot_f16_f16(const void* w_row, const void* x_q, int64_t n) {
  return dot_half<&widen_f16, &half_at>(w_row, x_q, n);
}

float vec_dot_bf16_bf16(const void* w_row, const void* x_q, int64_t n) {
  return dot_half<&widen_bf16, &bf16_at>(w_row, x_q, n);
}

}  // namespace flashlm::neon
