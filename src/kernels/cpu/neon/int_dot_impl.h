// The integer dot products of neon_kernels.h, as templates over the instructions that
// multiply int8 lanes (Dot): int_dot_neon.cpp instantiates them with plain ARMv8-A
// multiply-adds, int_dot_neon_dotprod.cpp with SDOT. Include only from those two files.
// Everything is in an anonymous namespace, so the copy built with the dotprod flags can
// never be the one the linker keeps for another file; for the same reason only
// <arm_neon.h> (always-inline intrinsics), memcpy and the block structs are used.
//
// Each kernel computes what its scalar reference in vec_dot.cpp computes: integer block
// sums are exact, only the float summation order of the per-block terms differs. Every
// kernel is one template over NT tokens: a weight block is unpacked once and meets NT
// activation rows (token t's at x_q + t * stride); the one-token entry point is the
// NT = 1 instance, so a token's result is bit-identical whichever entry computed it.
// Float products are written as explicit intrinsics and the files are compiled with
// -ffp-contract=off, so no instance can fuse a multiply-add another one does not.
//
// Dot must provide, for int8 vectors whose products are each at most 128 * 127 in
// magnitude (true here: Q8_0/Q8_1 activation codes are within +-127, and Q8_K ones meet
// weight codes below 64 in magnitude):
//   dot16(a, b):          the 16 products a[k] * b[k] summed into the int32 lanes;
//   dot32(a0, b0, a1, b1): the same for 32 products.
// How the products are spread over the four lanes is up to Dot: callers give all of a
// call's products the same scale, so only the sum of the lanes matters.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/neon/neon_kernels.h"
#include "quant/blocks.h"

namespace flashlm::neon {
namespace {

using quant::BlockQ4_0;
using quant::BlockQ4_1;
using quant::BlockQ4_K;
using quant::BlockQ5_0;
using quant::BlockQ5_1;
using quant::BlockQ5_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;
using quant::BlockQ8_1;
using quant::BlockQ8_K;
using quant::kQK_K;

// Rows in a mapped file have no alignment: every field is read through a byte pointer.
float half_at(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return static_cast<float>(h);
}

float float_at(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

int8x16_t load_s8(const uint8_t* p) { return vreinterpretq_s8_u8(vld1q_u8(p)); }
int16x8_t load_s16(const uint8_t* p) { return vreinterpretq_s16_u8(vld1q_u8(p)); }
int8x16_t as_s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

// ---- legacy 32-element formats ----

// Byte j of *lo (*hi) is 0xFF where bit j (16 + j) of the little-endian uint32 at qh is
// set: the fifth bits of a Q5_0/Q5_1 block, in element order.
void fifth_bits(const uint8_t* qh, uint8x16_t* lo, uint8x16_t* hi) {
  static constexpr uint8_t kByteLo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  static constexpr uint8_t kByteHi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  uint32_t u;
  std::memcpy(&u, qh, 4);
  const uint8x16_t bytes = vreinterpretq_u8_u32(vdupq_n_u32(u));
  const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ULL));
  *lo = vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kByteLo)), bit);
  *hi = vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kByteHi)), bit);
}

// How one weight block becomes 32 int8 codes (elements 0..15 in *lo, 16..31 in *hi).
// kMin: the codes are unsigned and the block's offset m meets the activation's
// s = d * sum(q) (Q8_1); otherwise the offset is folded into signed codes.
struct LegacyQ4_0 {
  using Block = BlockQ4_0;
  using Act = BlockQ8_0;
  static constexpr bool kMin = false;
  static void codes(const uint8_t* xb, int8x16_t* lo, int8x16_t* hi) {
    const uint8x16_t q = vld1q_u8(xb + offsetof(Block, qs));
    *lo = vsubq_s8(as_s8(vandq_u8(q, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
    *hi = vsubq_s8(as_s8(vshrq_n_u8(q, 4)), vdupq_n_s8(8));
  }
};

struct LegacyQ4_1 {
  using Block = BlockQ4_1;
  using Act = BlockQ8_1;
  static constexpr bool kMin = true;
  static void codes(const uint8_t* xb, int8x16_t* lo, int8x16_t* hi) {
    const uint8x16_t q = vld1q_u8(xb + offsetof(Block, qs));
    *lo = as_s8(vandq_u8(q, vdupq_n_u8(0x0F)));
    *hi = as_s8(vshrq_n_u8(q, 4));
  }
};

struct LegacyQ5_0 {
  using Block = BlockQ5_0;
  using Act = BlockQ8_0;
  static constexpr bool kMin = false;
  // q - 16 as int8: a clear fifth bit sets the top nibble (nibble - 16), a set one
  // leaves the nibble (nibble + 16 - 16).
  static void codes(const uint8_t* xb, int8x16_t* lo, int8x16_t* hi) {
    const uint8x16_t q = vld1q_u8(xb + offsetof(Block, qs));
    uint8x16_t b_lo, b_hi;
    fifth_bits(xb + offsetof(Block, qh), &b_lo, &b_hi);
    const uint8x16_t top = vdupq_n_u8(0xF0);
    *lo = as_s8(vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), vbicq_u8(top, b_lo)));
    *hi = as_s8(vorrq_u8(vshrq_n_u8(q, 4), vbicq_u8(top, b_hi)));
  }
};

struct LegacyQ5_1 {
  using Block = BlockQ5_1;
  using Act = BlockQ8_1;
  static constexpr bool kMin = true;
  static void codes(const uint8_t* xb, int8x16_t* lo, int8x16_t* hi) {
    const uint8x16_t q = vld1q_u8(xb + offsetof(Block, qs));
    uint8x16_t b_lo, b_hi;
    fifth_bits(xb + offsetof(Block, qh), &b_lo, &b_hi);
    const uint8x16_t bit4 = vdupq_n_u8(0x10);
    *lo = as_s8(vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), vandq_u8(b_lo, bit4)));
    *hi = as_s8(vorrq_u8(vshrq_n_u8(q, 4), vandq_u8(b_hi, bit4)));
  }
};

struct LegacyQ8_0 {
  using Block = BlockQ8_0;
  using Act = BlockQ8_0;
  static constexpr bool kMin = false;
  static void codes(const uint8_t* xb, int8x16_t* lo, int8x16_t* hi) {
    *lo = load_s8(xb + offsetof(Block, qs));
    *hi = load_s8(xb + offsetof(Block, qs) + 16);
  }
};

template <typename W, typename Dot, int NT>
void legacy_dot(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  using Block = typename W::Block;
  using Act = typename W::Act;
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  float32x4_t acc[NT];  // lanes of sum d_w * d_y * sumi
  float mins[NT];       // sum of m * s (kMin formats)
  for (int t = 0; t < NT; ++t) {
    acc[t] = vdupq_n_f32(0.0f);
    mins[t] = 0.0f;
  }
  for (int64_t i = 0; i < n / Block::kElems; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(Block));
    int8x16_t lo, hi;
    W::codes(xb, &lo, &hi);
    const float xd = half_at(xb + offsetof(Block, d));
    for (int t = 0; t < NT; ++t) {
      const uint8_t* yb = y + static_cast<size_t>(t) * stride + i * static_cast<int64_t>(sizeof(Act));
      const uint8_t* q8 = yb + offsetof(Act, qs);
      const int32x4_t sumi = Dot::dot32(lo, load_s8(q8), hi, load_s8(q8 + 16));
      acc[t] = vfmaq_n_f32(acc[t], vcvtq_f32_s32(sumi), xd * half_at(yb + offsetof(Act, d)));
      if constexpr (W::kMin) mins[t] += half_at(xb + offsetof(Block, m)) * half_at(yb + offsetof(Act, s));
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = vaddvq_f32(acc[t]) + mins[t];
}

// ---- K-quants against Q8_K ----

// The six-bit scales (*sc) and mins (*mn) of a Q4_K/Q5_K block, unpacked as quant_ref.h's
// k4_scale_min does, four bytes at a time: for j < 4 scale j is byte j and min j is
// byte j + 4 (low six bits); for j >= 4 the low four bits come from byte j + 4 (scale:
// low nibble, min: high nibble) and the top two from the spare bits 6..7 of byte j - 4
// (scale) or byte j (min).
void scales_mins_k4(const uint8_t* packed, uint8x8_t* sc, uint8x8_t* mn) {
  uint32_t w[3];
  std::memcpy(w, packed, sizeof(w));
  const uint32_t sc_lo = w[0] & 0x3F3F3F3Fu;
  const uint32_t mn_lo = w[1] & 0x3F3F3F3Fu;
  const uint32_t sc_hi = (w[2] & 0x0F0F0F0Fu) | ((w[0] >> 2) & 0x30303030u);
  const uint32_t mn_hi = ((w[2] >> 4) & 0x0F0F0F0Fu) | ((w[1] >> 2) & 0x30303030u);
  *sc = vcreate_u8((static_cast<uint64_t>(sc_hi) << 32) | sc_lo);
  *mn = vcreate_u8((static_cast<uint64_t>(mn_hi) << 32) | mn_lo);
}

// Q4_K and Q5_K (the fifth bit from qh). Per super-block and token: sub-block j's
// integer dot (32 elements) times its scale, summed in int32 lanes (|lane| < 2^24 even
// for Q5_K: 64 products of at most 31 * 63 * 128 each), then scaled by d_w * d_y; the
// mins meet the activation's 16-element sums and come off with dmin_w * d_y.
template <typename Block, typename Dot, int NT>
void q45_K_dot(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  constexpr bool kQ5 = sizeof(Block) == sizeof(BlockQ5_K);
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  const uint8x16_t m4 = vdupq_n_u8(0x0F);
  const uint8x16_t bit4 = vdupq_n_u8(0x10);
  float32x4_t acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(Block));
    const uint8_t* yb[NT];
    for (int t = 0; t < NT; ++t) {
      yb[t] = y + static_cast<size_t>(t) * stride + i * static_cast<int64_t>(sizeof(BlockQ8_K));
    }
    uint8x8_t sc8, mn8;
    scales_mins_k4(xb + offsetof(Block, scales), &sc8, &mn8);
    // Bytes s0 s0 s1 s1 ... s7 s7: widened, four lanes per pair of sub-blocks, in the
    // lane order of vpaddq(sub-block 2j's lanes, sub-block 2j + 1's lanes).
    const uint8x16_t sc_pairs = vzip1q_u8(vcombine_u8(sc8, sc8), vcombine_u8(sc8, sc8));
    const uint16x8_t sc_pairs16[2] = {vmovl_u8(vget_low_u8(sc_pairs)), vmovl_high_u8(sc_pairs)};
    const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(mn8));
    const uint8_t* qs = xb + offsetof(Block, qs);
    uint8x16_t qh[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};
    if constexpr (kQ5) {
      qh[0] = vld1q_u8(xb + offsetof(BlockQ5_K, qh));
      qh[1] = vld1q_u8(xb + offsetof(BlockQ5_K, qh) + 16);
    }
    int32x4_t sumi[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = vdupq_n_s32(0);
    for (int j = 0; j < 4; ++j) {  // 64 elements: sub-blocks 2j (low nibbles) and 2j + 1 (high)
      const uint16x8_t s16 = sc_pairs16[j / 2];
      const int32x4_t scale = vreinterpretq_s32_u32(j % 2 == 0 ? vmovl_u16(vget_low_u16(s16)) : vmovl_high_u16(s16));
      int8x16_t lo[2], hi[2];
      for (int r = 0; r < 2; ++r) {
        const uint8x16_t q = vld1q_u8(qs + 32 * j + 16 * r);
        uint8x16_t l = vandq_u8(q, m4);
        uint8x16_t h = vshrq_n_u8(q, 4);
        if constexpr (kQ5) {  // bit 2j of qh[l] for the low sub-block, 2j + 1 for the high; qh is pre-shifted
          l = vorrq_u8(l, vandq_u8(vshlq_n_u8(qh[r], 4), bit4));
          h = vorrq_u8(h, vandq_u8(vshlq_n_u8(qh[r], 3), bit4));
          qh[r] = vshrq_n_u8(qh[r], 2);
        }
        lo[r] = as_s8(l);
        hi[r] = as_s8(h);
      }
      for (int t = 0; t < NT; ++t) {
        const uint8_t* q8 = yb[t] + offsetof(BlockQ8_K, qs) + 64 * j;
        const int32x4_t p_lo = Dot::dot32(lo[0], load_s8(q8), lo[1], load_s8(q8 + 16));
        const int32x4_t p_hi = Dot::dot32(hi[0], load_s8(q8 + 32), hi[1], load_s8(q8 + 48));
        sumi[t] = vmlaq_s32(sumi[t], vpaddq_s32(p_lo, p_hi), scale);
      }
    }
    const float xd = half_at(xb + offsetof(Block, d));
    const float xdmin = half_at(xb + offsetof(Block, dmin));
    for (int t = 0; t < NT; ++t) {
      const float yd = float_at(yb[t] + offsetof(BlockQ8_K, d));
      // The activation's 32-element sums (|sum| <= 4096) times the mins, in int32 lanes.
      const uint8_t* bsums = yb[t] + offsetof(BlockQ8_K, bsums);
      const int16x8_t sums32 = vpaddq_s16(load_s16(bsums), load_s16(bsums + 16));
      const int32x4_t summs = vmlal_high_s16(vmull_s16(vget_low_s16(sums32), vget_low_s16(mins)), sums32, mins);
      acc[t] = vfmaq_n_f32(acc[t], vcvtq_f32_s32(sumi[t]), xd * yd);
      acc[t] = vfmsq_n_f32(acc[t], vcvtq_f32_s32(summs), xdmin * yd);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = vaddvq_f32(acc[t]);
}

// Q6_K: signed codes q - 32 (|q - 32| <= 32) meet the activation directly; per group of
// four 16-element sub-blocks, the four dots are reduced to one lane each and multiplied
// by the four int8 scales.
template <typename Dot, int NT>
void q6_K_dot(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  const uint8x16_t m3 = vdupq_n_u8(0x03);
  const uint8x16_t m30 = vdupq_n_u8(0x30);
  const int8x16_t m32 = vdupq_n_s8(32);
  float32x4_t acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ6_K));
    const uint8_t* yb[NT];
    for (int t = 0; t < NT; ++t) {
      yb[t] = y + static_cast<size_t>(t) * stride + i * static_cast<int64_t>(sizeof(BlockQ8_K));
    }
    const int8x16_t scales = load_s8(xb + offsetof(BlockQ6_K, scales));
    int32x4_t sumi[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = vdupq_n_s32(0);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = xb + offsetof(BlockQ6_K, ql) + 64 * half;
      const uint8_t* qhp = xb + offsetof(BlockQ6_K, qh) + 32 * half;
      for (int g = 0; g < 2; ++g) {  // 64 elements, sub-blocks 8 half + 4 g .. + 3
        // Element l of a half's four 32-element chunks (l < 32): chunk 0 is the low nibble
        // of ql[l] with bits 0-1 of qh[l] on top, chunk 1 the low nibble of ql[32 + l]
        // with bits 2-3, chunk 2 the high nibble of ql[l] with bits 4-5, chunk 3 the high
        // nibble of ql[32 + l] with bits 6-7. Group g holds chunks 2g and 2g + 1.
        int8x16_t c[4];
        for (int r = 0; r < 2; ++r) {
          const uint8x16_t h = vld1q_u8(qhp + 16 * r);
          const uint8x16_t l0 = vld1q_u8(ql + 16 * r);
          const uint8x16_t l1 = vld1q_u8(ql + 32 + 16 * r);
          uint8x16_t a, b;
          if (g == 0) {
            a = vsliq_n_u8(l0, vandq_u8(h, m3), 4);
            b = vsliq_n_u8(l1, vandq_u8(vshrq_n_u8(h, 2), m3), 4);
          } else {
            a = vsraq_n_u8(vandq_u8(h, m30), l0, 4);
            b = vsraq_n_u8(vandq_u8(vshrq_n_u8(h, 2), m30), l1, 4);
          }
          c[r] = vsubq_s8(as_s8(a), m32);
          c[2 + r] = vsubq_s8(as_s8(b), m32);
        }
        // The group's four int8 scales, widened.
        const int16x8_t s16 = half == 0 ? vmovl_s8(vget_low_s8(scales)) : vmovl_high_s8(scales);
        const int32x4_t scale = g == 0 ? vmovl_s16(vget_low_s16(s16)) : vmovl_high_s16(s16);
        for (int t = 0; t < NT; ++t) {
          const uint8_t* q8 = yb[t] + offsetof(BlockQ8_K, qs) + 128 * half + 64 * g;
          const int32x4_t p0 = Dot::dot16(c[0], load_s8(q8));
          const int32x4_t p1 = Dot::dot16(c[1], load_s8(q8 + 16));
          const int32x4_t p2 = Dot::dot16(c[2], load_s8(q8 + 32));
          const int32x4_t p3 = Dot::dot16(c[3], load_s8(q8 + 48));
          sumi[t] = vmlaq_s32(sumi[t], vpaddq_s32(vpaddq_s32(p0, p1), vpaddq_s32(p2, p3)), scale);
        }
      }
    }
    const float xd = half_at(xb + offsetof(BlockQ6_K, d));
    for (int t = 0; t < NT; ++t) {
      acc[t] = vfmaq_n_f32(acc[t], vcvtq_f32_s32(sumi[t]), xd * float_at(yb[t] + offsetof(BlockQ8_K, d)));
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = vaddvq_f32(acc[t]);
}

// ---- entry points ----

template <void (*Kernel)(const void*, const void*, size_t, int64_t, float*)>
float one_token(const void* w_row, const void* x_q, int64_t n) {
  float out;
  Kernel(w_row, x_q, 0, n, &out);
  return out;
}

template <typename Dot>
void q6_K_x8(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  q6_K_dot<Dot, 8>(w_row, x_q, stride, n, out);
}

template <typename Dot>
constexpr IntDotKernels make_int_dot_kernels() {
  IntDotKernels k{};
  k.q4_0 = {&one_token<&legacy_dot<LegacyQ4_0, Dot, 1>>, &legacy_dot<LegacyQ4_0, Dot, 8>};
  k.q4_1 = {&one_token<&legacy_dot<LegacyQ4_1, Dot, 1>>, &legacy_dot<LegacyQ4_1, Dot, 8>};
  k.q5_0 = {&one_token<&legacy_dot<LegacyQ5_0, Dot, 1>>, &legacy_dot<LegacyQ5_0, Dot, 8>};
  k.q5_1 = {&one_token<&legacy_dot<LegacyQ5_1, Dot, 1>>, &legacy_dot<LegacyQ5_1, Dot, 8>};
  k.q8_0 = {&one_token<&legacy_dot<LegacyQ8_0, Dot, 1>>, &legacy_dot<LegacyQ8_0, Dot, 8>};
  k.q4_K = {&one_token<&q45_K_dot<BlockQ4_K, Dot, 1>>, &q45_K_dot<BlockQ4_K, Dot, 8>};
  k.q5_K = {&one_token<&q45_K_dot<BlockQ5_K, Dot, 1>>, &q45_K_dot<BlockQ5_K, Dot, 8>};
  k.q6_K = {&one_token<&q6_K_dot<Dot, 1>>, &q6_K_x8<Dot>};
  return k;
}

}  // namespace
}  // namespace flashlm::neon
