// AVX2 + FMA + F16C kernels (this file is compiled with -mavx2 -mfma -mf16c; callers
// check cpu_has_avx2() first). Each one computes what its scalar reference in
// vec_dot.cpp computes: block sums are exact integers, only the float summation order
// of the per-block terms differs.
//
// Only <immintrin.h>, the block structs and our own declarations are included: an
// inline function from a shared header, emitted here with AVX2 flags, could be the copy
// the linker keeps for the whole program and break it on older CPUs. All helpers have
// internal linkage for the same reason. Blocks are read through byte pointers with
// unaligned loads and memcpy, because rows in a mapped file have no alignment.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/avx2/avx2_kernels.h"
#include "quant/blocks.h"

namespace flashlm::avx2 {
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

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

float float_at(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// Sums of adjacent int16 pairs as int32.
__m256i sum_pairs(__m256i v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }

// Per 4-byte group: sum of x*y for unsigned x and signed y (int32 lanes). maddubs
// saturates at int16; |x| <= 63 and |y| <= 128 keep every pair sum below 2^15.
__m256i dot_us(__m256i x, __m256i y) { return sum_pairs(_mm256_maddubs_epi16(x, y)); }


// The 32 nibbles of a legacy block in element order: low nibbles are elements 0..15,
// high nibbles 16..31.
__m256i nibbles32(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Byte j = 0xFF where bit j of the little-endian uint32 at qh is set (the fifth bits of
// Q5_0/Q5_1).
__m256i bits32(const uint8_t* qh) {
  uint32_t u;
  std::memcpy(&u, qh, 4);
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(u)), spread);
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

// The j-th six-bit scale and min of a Q4_K/Q5_K block (same unpacking as quant_ref.h's
// k4_scale_min, repeated here so no shared inline code is compiled with AVX2 flags).
void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// ---- kernels over NT activation rows at once ----
// Each kernel below unpacks a weight block once and applies it to NT tokens' rows
// (token t's row starts at y + t * stride). The single-token entry points are the same
// templates with NT = 1, so a token's result is bit-identical whichever entry point
// computed it: every per-token operation is the same, only unpacking is shared.

// Legacy 32-element formats: how to turn one weight block into 32 int8 codes.
// kSigned: codes are signed (the offset is folded in) and meet Q8_0 through dot_ss;
// otherwise codes are unsigned and the block's min meets Q8_1's s.
struct LegacyQ4_0 {
  using Block = BlockQ4_0;
  using Act = BlockQ8_0;
  static constexpr bool kSigned = true;
  static __m256i codes(const uint8_t* xb) {
    return _mm256_sub_epi8(nibbles32(xb + offsetof(Block, qs)), _mm256_set1_epi8(8));
  }
};

struct LegacyQ4_1 {
  using Block = BlockQ4_1;
  using Act = BlockQ8_1;
  static constexpr bool kSigned = false;
  static __m256i codes(const uint8_t* xb) { return nibbles32(xb + offsetof(Block, qs)); }
};

struct LegacyQ5_0 {
  using Block = BlockQ5_0;
  using Act = BlockQ8_0;
  static constexpr bool kSigned = true;
  // q - 16 as int8: a clear fifth bit sets the top nibble (nibble - 16), a set one
  // leaves the nibble (nibble + 16 - 16).
  static __m256i codes(const uint8_t* xb) {
    const __m256i top = _mm256_set1_epi8(static_cast<char>(0xF0));
    const __m256i high = _mm256_andnot_si256(bits32(xb + offsetof(Block, qh)), top);
    return _mm256_or_si256(nibbles32(xb + offsetof(Block, qs)), high);
  }
};

struct LegacyQ5_1 {
  using Block = BlockQ5_1;
  using Act = BlockQ8_1;
  static constexpr bool kSigned = false;
  static __m256i codes(const uint8_t* xb) {
    const __m256i high = _mm256_and_si256(bits32(xb + offsetof(Block, qh)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(xb + offsetof(Block, qs)), high);
  }
};

struct LegacyQ8_0 {
  using Block = BlockQ8_0;
  using Act = BlockQ8_0;
  static constexpr bool kSigned = true;
  static __m256i codes(const uint8_t* xb) { return load32(xb + offsetof(Block, qs)); }
};

template <typename W, int NT>
void legacy_dot(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  using Block = typename W::Block;
  using Act = typename W::Act;
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  __m256 acc[NT];
  float summs[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm256_setzero_ps();
    summs[t] = 0.0f;
  }
  for (int64_t i = 0; i < n / Block::kElems; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(Block));
    const float xd = half_at(xb + offsetof(Block, d));
    const __m256i qx = W::codes(xb);
    // Signed codes go into maddubs as |qx| with their signs moved onto the activations
    // (exact while no activation code is -128, which |q| <= 127 guarantees); unsigned
    // codes go in as they are.
    const __m256i ux = W::kSigned ? _mm256_sign_epi8(qx, qx) : qx;
    for (int t = 0; t < NT; ++t) {
      const uint8_t* yb = y + static_cast<size_t>(t) * stride + i * static_cast<int64_t>(sizeof(Act));
      const __m256 d = _mm256_set1_ps(xd * half_at(yb + offsetof(Act, d)));
      if constexpr (!W::kSigned) summs[t] += half_at(xb + offsetof(Block, m)) * half_at(yb + offsetof(Act, s));
      __m256i qy = load32(yb + offsetof(Act, qs));
      if constexpr (W::kSigned) qy = _mm256_sign_epi8(qy, qx);
      acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_us(ux, qy)), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = W::kSigned ? hsum(acc[t]) : hsum(acc[t]) + summs[t];
}

// Q4_K/Q5_K (Q5 adds the fifth bit from qh): per super-block, the integer sum of
// sc_j * q * q8 is scaled by d into acc, and dmin * sum(mins * bsums) is subtracted
// at the end.
template <typename Block, int NT>
void q45_K_dot(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  constexpr bool kQ5 = sizeof(Block) == sizeof(BlockQ5_K);
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m1 = _mm256_set1_epi8(1);
  __m256 acc[NT];
  float mins[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm256_setzero_ps();
    mins[t] = 0.0f;
  }
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(Block));
    const uint8_t* yb[NT];
    for (int t = 0; t < NT; ++t) {
      yb[t] = y + static_cast<size_t>(t) * stride + i * static_cast<int64_t>(sizeof(BlockQ8_K));
    }
    const float xd = half_at(xb + offsetof(Block, d));
    const float xdmin = half_at(xb + offsetof(Block, dmin));
    int sc[8];
    int16_t mn16[16];  // sub-block j's min for each of the activation's 16-element sums
    for (int j = 0; j < 8; ++j) {
      int mn;
      scale_min_k4(j, xb + offsetof(Block, scales), &sc[j], &mn);
      mn16[2 * j] = mn16[2 * j + 1] = static_cast<int16_t>(mn);
    }
    const __m256i mins16 = load32(mn16);
    const uint8_t* qs = xb + offsetof(Block, qs);
    __m256i hbits = _mm256_setzero_si256();
    if constexpr (kQ5) hbits = load32(xb + offsetof(BlockQ5_K, qh));
    __m256i sumi[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {  // 64 elements: sub-blocks 2j (low nibbles), 2j + 1 (high)
      const __m256i q4 = load32(qs + 32 * j);
      __m256i lo = _mm256_and_si256(q4, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
      if constexpr (kQ5) {  // fifth bit of sub-block 2j is bit 2j of qh[l]; hbits is pre-shifted
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hbits, m1), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 1), m1), 4));
        hbits = _mm256_srli_epi16(hbits, 2);
      }
      const __m256i sc_lo = _mm256_set1_epi16(static_cast<int16_t>(sc[2 * j]));
      const __m256i sc_hi = _mm256_set1_epi16(static_cast<int16_t>(sc[2 * j + 1]));
      for (int t = 0; t < NT; ++t) {
        const uint8_t* q8 = yb[t] + offsetof(BlockQ8_K, qs) + 64 * j;
        const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(q8)), sc_lo);
        const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(q8 + 32)), sc_hi);
        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p_lo, p_hi));
      }
    }
    for (int t = 0; t < NT; ++t) {
      const float yd = float_at(yb[t] + offsetof(BlockQ8_K, d));
      // The mins, through the activation's 16-element sums (|sum| < 2^21: exact).
      const int summs = hsum_i32(_mm256_madd_epi16(load32(yb[t] + offsetof(BlockQ8_K, bsums)), mins16));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(xd * yd), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
      mins[t] += (xdmin * yd) * static_cast<float>(summs);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum(acc[t]) - mins[t];
}

template <int NT>
void q6_K_dot(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ6_K));
    const uint8_t* yb[NT];
    for (int t = 0; t < NT; ++t) {
      yb[t] = y + static_cast<size_t>(t) * stride + i * static_cast<int64_t>(sizeof(BlockQ8_K));
    }
    int8_t scales[kQK_K / 16];
    std::memcpy(scales, xb + offsetof(BlockQ6_K, scales), sizeof(scales));
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
    // Values go in unsigned (0..63); the -32 offset comes back through the block sums:
    // sumi starts at -32 * scales[j] * bsums[j], spread over the lanes.
    __m256i sumi[NT];
    for (int t = 0; t < NT; ++t) {
      const __m256i offset = _mm256_madd_epi16(load32(yb[t] + offsetof(BlockQ8_K, bsums)), scales16);
      sumi[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offset, 5));
    }
    for (int half = 0; half < 2; ++half) {
      const __m256i ql0 = load32(xb + offsetof(BlockQ6_K, ql) + 64 * half);
      const __m256i ql1 = load32(xb + offsetof(BlockQ6_K, ql) + 64 * half + 32);
      const __m256i qh = load32(xb + offsetof(BlockQ6_K, qh) + 32 * half);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)),
          _mm256_or_si256(_mm256_and_si256(ql1, m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4)),
      };
      for (int k = 0; k < 4; ++k) {
        const int c = 4 * half + k;  // 32-element chunk; its two 16-element halves have scales 2c, 2c + 1
        const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(scales[2 * c + 1]), _mm_set1_epi16(scales[2 * c]));
        for (int t = 0; t < NT; ++t) {
          const __m256i p = _mm256_maddubs_epi16(q[k], load32(yb[t] + offsetof(BlockQ8_K, qs) + 32 * c));
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, sc));
        }
      }
    }
    const float xd = half_at(xb + offsetof(BlockQ6_K, d));
    for (int t = 0; t < NT; ++t) {
      const float d = xd * float_at(yb[t] + offsetof(BlockQ8_K, d));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum(acc[t]);
}

// The one-token entry point of a kernel template.
template <void (*Kernel)(const void*, const void*, size_t, int64_t, float*)>
float one(const void* w_row, const void* x_q, int64_t n) {
  float out;
  Kernel(w_row, x_q, 0, n, &out);
  return out;
}

}  // namespace

float dot_f32(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float vec_dot_f16_f16(const void* w_row, const void* x_q, int64_t n) {
  const auto* a = static_cast<const uint8_t*>(w_row);
  const auto* b = static_cast<const uint8_t*>(x_q);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 2 * i)));
    const __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 * i)));
    const __m256 a1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 2 * i + 16)));
    const __m256 b1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 * i + 16)));
    acc0 = _mm256_fmadd_ps(a0, b0, acc0);
    acc1 = _mm256_fmadd_ps(a1, b1, acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += half_at(a + 2 * i) * half_at(b + 2 * i);
  return s;
}

namespace {
// Eight BF16 values as floats: each is the top half of its float's bits.
__m256 bf16x8(const uint8_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
float bf16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

// vec_dot_f16_f16's loop for BF16 rows and activations (the layout Hugging Face
// checkpoints store): the widening is exact, so only the summation order differs from
// the scalar reference.
float vec_dot_bf16_bf16(const void* w_row, const void* x_q, int64_t n) {
  const auto* a = static_cast<const uint8_t*>(w_row);
  const auto* b = static_cast<const uint8_t*>(x_q);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(bf16x8(a + 2 * i), bf16x8(b + 2 * i), acc0);
    acc1 = _mm256_fmadd_ps(bf16x8(a + 2 * i + 16), bf16x8(b + 2 * i + 16), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += bf16_at(a + 2 * i) * bf16_at(b + 2 * i);
  return s;
}


namespace {

// Q8_0/Q8_1 activation rows exactly as vec_dot.cpp's quantize_row_q8_x86 writes them
// (bit for bit): d = amax / 127, codes round(x * 127 / amax) half to even, NaN codes 0,
// and for Q8_1 s = d * sum(codes) rounded to half.
template <typename Block>
void quantize_q8(const float* x, void* dst, int64_t n) {
  constexpr bool kSum = sizeof(Block) == sizeof(BlockQ8_1);
  auto* out = static_cast<uint8_t*>(dst);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t i = 0; i < n / Block::kElems; ++i) {
    const float* xb = x + i * Block::kElems;
    uint8_t* ob = out + i * static_cast<int64_t>(sizeof(Block));
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      amax = _mm256_max_ps(_mm256_and_ps(v[k], abs_mask), amax);  // a NaN first operand keeps amax, as fmax does
    }
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(amax, 1), _mm256_castps256_ps128(amax));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float am = _mm_cvtss_f32(m);
    const float d = am / 127.0f;
    const __m256 id = _mm256_set1_ps(am != 0.0f ? 127.0f / am : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      __m256 s = _mm256_mul_ps(v[k], id);
      s = _mm256_and_ps(s, _mm256_cmp_ps(s, s, _CMP_ORD_Q));  // NaN -> 0
      s = _mm256_min_ps(_mm256_max_ps(s, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
      q[k] = _mm256_cvtps_epi32(_mm256_round_ps(s, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // packs interleaves 128-bit lanes; the permute puts the 32 codes back in order.
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    const __m256i codes = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ob + offsetof(Block, qs)), codes);
    const uint16_t dh = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    std::memcpy(ob + offsetof(Block, d), &dh, 2);
    if constexpr (kSum) {
      const __m256i s4 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
      const uint16_t sh = _cvtss_sh(d * static_cast<float>(_mm_cvtsi128_si32(s)), _MM_FROUND_TO_NEAREST_INT);
      std::memcpy(ob + offsetof(Block, s), &sh, 2);
    }
  }
}

}  // namespace

void quantize_row_q8_0(const float* x, void* dst, int64_t n) { quantize_q8<BlockQ8_0>(x, dst, n); }
void quantize_row_q8_1(const float* x, void* dst, int64_t n) { quantize_q8<BlockQ8_1>(x, dst, n); }

float vec_dot_q4_0_q8_0(const void* w_row, const void* x_q, int64_t n) {
  return one<&legacy_dot<LegacyQ4_0, 1>>(w_row, x_q, n);
}
float vec_dot_q4_1_q8_1(const void* w_row, const void* x_q, int64_t n) {
  return one<&legacy_dot<LegacyQ4_1, 1>>(w_row, x_q, n);
}
float vec_dot_q5_0_q8_0(const void* w_row, const void* x_q, int64_t n) {
  return one<&legacy_dot<LegacyQ5_0, 1>>(w_row, x_q, n);
}
float vec_dot_q5_1_q8_1(const void* w_row, const void* x_q, int64_t n) {
  return one<&legacy_dot<LegacyQ5_1, 1>>(w_row, x_q, n);
}
float vec_dot_q8_0_q8_0(const void* w_row, const void* x_q, int64_t n) {
  return one<&legacy_dot<LegacyQ8_0, 1>>(w_row, x_q, n);
}
float vec_dot_q4_K_q8_K(const void* w_row, const void* x_q, int64_t n) {
  return one<&q45_K_dot<BlockQ4_K, 1>>(w_row, x_q, n);
}
float vec_dot_q5_K_q8_K(const void* w_row, const void* x_q, int64_t n) {
  return one<&q45_K_dot<BlockQ5_K, 1>>(w_row, x_q, n);
}
float vec_dot_q6_K_q8_K(const void* w_row, const void* x_q, int64_t n) { return one<&q6_K_dot<1>>(w_row, x_q, n); }

void vec_dot_q4_0_q8_0_x8(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  legacy_dot<LegacyQ4_0, 8>(w_row, x_q, stride, n, out);
}
void vec_dot_q4_1_q8_1_x8(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  legacy_dot<LegacyQ4_1, 8>(w_row, x_q, stride, n, out);
}
void vec_dot_q5_0_q8_0_x8(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  legacy_dot<LegacyQ5_0, 8>(w_row, x_q, stride, n, out);
}
void vec_dot_q5_1_q8_1_x8(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  legacy_dot<LegacyQ5_1, 8>(w_row, x_q, stride, n, out);
}
void vec_dot_q8_0_q8_0_x8(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  legacy_dot<LegacyQ8_0, 8>(w_row, x_q, stride, n, out);
}
void vec_dot_q4_K_q8_K_x8(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  q45_K_dot<BlockQ4_K, 8>(w_row, x_q, stride, n, out);
}
void vec_dot_q5_K_q8_K_x8(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  q45_K_dot<BlockQ5_K, 8>(w_row, x_q, stride, n, out);
}
void vec_dot_q6_K_q8_K_x8(const void* w_row, const void* x_q, size_t stride, int64_t n, float* out) {
  // Q6_K keeps four tokens per pass: eight need more registers than AVX2 has and
  // measured slower.
  q6_K_dot<4>(w_row, x_q, stride, n, out);
  q6_K_dot<4>(w_row, static_cast<const uint8_t*>(x_q) + 4 * stride, stride, n, out + 4);
}

}  // namespace flashlm::avx2
