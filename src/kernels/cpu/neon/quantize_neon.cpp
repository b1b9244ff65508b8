// Activation quantizers on Advanced SIMD, writing exactly the bytes of the scalar
// references (goldens from llama.cpp depend on them): the same float operations in the
// same order, with these equivalences:
//   - fmax/fmin over |x| is FMAXNM, which skips quiet NaNs as std::fmax does;
//   - FCVTNS rounds half to even like nearbyint in the default rounding mode, turns NaN
//     into 0 (the references' isnan case) and saturates, and rounding commutes with
//     clamping to integer bounds, so round-then-saturate equals clamp-then-round;
//   - FCVT to half rounds to nearest even like fp32_to_fp16 (FPCR at its defaults).
#include <arm_neon.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/neon/neon_kernels.h"
#include "quant/blocks.h"

namespace flashlm::neon {
namespace {

using quant::BlockQ8_0;
using quant::BlockQ8_1;
using quant::BlockQ8_K;
using quant::kQK_K;

void put_half(uint8_t* p, float v) {
  const __fp16 h = static_cast<__fp16>(v);
  std::memcpy(p, &h, 2);
}

// Sixteen int32 codes narrowed to int8 with saturation to [-128, 127].
int8x16_t narrow16(const int32x4_t q[4]) {
  const int16x8_t lo = vqmovn_high_s32(vqmovn_s32(q[0]), q[1]);
  const int16x8_t hi = vqmovn_high_s32(vqmovn_s32(q[2]), q[3]);
  return vqmovn_high_s16(vqmovn_s16(lo), hi);
}

// vec_dot.cpp's quantize_block_q8_x86: d = amax / 127, codes round(x * 127 / amax)
// clamped to [-127, 127], and for Q8_1 s = d * sum(codes).
template <typename Block>
void quantize_q8(const float* x, void* dst, int64_t n) {
  constexpr bool kSum = sizeof(Block) == sizeof(BlockQ8_1);
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / Block::kElems; ++i) {
    const float* xb = x + i * Block::kElems;
    uint8_t* ob = out + i * static_cast<int64_t>(sizeof(Block));
    float32x4_t v[8];
    float32x4_t amax = vdupq_n_f32(0.0f);
    for (int k = 0; k < 8; ++k) {
      v[k] = vld1q_f32(xb + 4 * k);
      amax = vmaxnmq_f32(amax, vabsq_f32(v[k]));
    }
    const float am = vmaxnmvq_f32(amax);
    const float d = am / 127.0f;
    const float id = am != 0.0f ? 127.0f / am : 0.0f;
    int8x16_t codes[2];
    for (int h = 0; h < 2; ++h) {
      int32x4_t q[4];
      for (int k = 0; k < 4; ++k) q[k] = vcvtnq_s32_f32(vmulq_n_f32(v[4 * h + k], id));
      codes[h] = vmaxq_s8(narrow16(q), vdupq_n_s8(-127));
      vst1q_u8(ob + offsetof(Block, qs) + 16 * h, vreinterpretq_u8_s8(codes[h]));
    }
    put_half(ob + offsetof(Block, d), d);
    if constexpr (kSum) {
      const int sum = vaddlvq_s8(codes[0]) + vaddlvq_s8(codes[1]);
      put_half(ob + offsetof(Block, s), d * static_cast<float>(sum));
    }
  }
}

// quant_k.cpp's quantize_block for Q8_K: the scale comes from the first element of
// largest magnitude (its sign included), codes round(x * -127 / max) clamped to
// [-128, 127], 16-element sums; an all-zero or non-finite block is all zeros.
void quantize_block_q8_K(const float* x, uint8_t* ob) {
  float32x4_t amax = vdupq_n_f32(0.0f);
  for (int k = 0; k < kQK_K / 4; ++k) amax = vmaxnmq_f32(amax, vabsq_f32(vld1q_f32(x + 4 * k)));
  const float am = vmaxnmvq_f32(amax);
  std::memset(ob, 0, sizeof(BlockQ8_K));
  if (am == 0.0f || !std::isfinite(am)) return;
  // The first element whose |x| is am (there is one: FMAXNM returns an operand).
  const float32x4_t target = vdupq_n_f32(am);
  int64_t j = 0;
  for (; j < kQK_K; j += 16) {
    uint32x4_t hit = vceqq_f32(vabsq_f32(vld1q_f32(x + j)), target);
    for (int k = 1; k < 4; ++k) hit = vorrq_u32(hit, vceqq_f32(vabsq_f32(vld1q_f32(x + j + 4 * k)), target));
    if (vmaxvq_u32(hit) != 0) break;
  }
  while (j < kQK_K - 1 && std::fabs(x[j]) != am) ++j;
  const float iscale = -127.0f / x[j];
  int16_t bsums[kQK_K / 16];
  for (int g = 0; g < kQK_K / 16; ++g) {
    int32x4_t q[4];
    for (int k = 0; k < 4; ++k) q[k] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 16 * g + 4 * k), iscale));
    const int8x16_t codes = narrow16(q);
    vst1q_u8(ob + offsetof(BlockQ8_K, qs) + 16 * g, vreinterpretq_u8_s8(codes));
    bsums[g] = vaddlvq_s8(codes);
  }
  std::memcpy(ob + offsetof(BlockQ8_K, bsums), bsums, sizeof(bsums));
  const float d = 1.0f / iscale;
  std::memcpy(ob + offsetof(BlockQ8_K, d), &d, sizeof(d));
}

}  // namespace

void quantize_row_q8_0(const float* x, void* dst, int64_t n) { quantize_q8<BlockQ8_0>(x, dst, n); }
void quantize_row_q8_1(const float* x, void* dst, int64_t n) { quantize_q8<BlockQ8_1>(x, dst, n); }

void quantize_row_q8_K(const float* x, void* dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    quantize_block_q8_K(x + i * kQK_K, out + i * static_cast<int64_t>(sizeof(BlockQ8_K)));
  }
}

}  // namespace flashlm::neon
