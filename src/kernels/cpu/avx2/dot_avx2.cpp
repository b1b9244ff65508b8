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

// Sums of adjacent int16 pairs as int32.
__m256i sum_pairs(__m256i v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }

// Per 4-byte group: sum of x*y for unsigned x and signed y (int32 lanes). maddubs
// saturates at int16; |x| <= 63 and |y| <= 128 keep every pair sum below 2^15.
__m256i dot_us(__m256i x, __m256i y) { return sum_pairs(_mm256_maddubs_epi16(x, y)); }

// Same for two signed operands: move x's sign onto y so x can go in unsigned. Exact
// while y != -128, which quantized activations (|q| <= 127) guarantee.
__m256i dot_ss(__m256i x, __m256i y) { return dot_us(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)); }

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

// Q4_K/Q5_K super-block: integer sum of sc_j * q * q8 (q with its fifth bit when qh is
// set) into acc scaled by d, and the mins term returned for the caller to subtract.
float q45_K_block(const uint8_t* xb, const uint8_t* scales, const uint8_t* qs, const uint8_t* qh,
                  const uint8_t* yb, __m256* acc) {
  const float yd = float_at(yb + offsetof(BlockQ8_K, d));
  const float d = half_at(xb + offsetof(BlockQ4_K, d)) * yd;  // Q5_K has d, dmin at the same offsets
  const float dmin = half_at(xb + offsetof(BlockQ4_K, dmin)) * yd;
  int sc[8], mn[8];
  for (int j = 0; j < 8; ++j) scale_min_k4(j, scales, &sc[j], &mn[j]);
  int16_t bsums[kQK_K / 16];
  std::memcpy(bsums, yb + offsetof(BlockQ8_K, bsums), sizeof(bsums));
  int summs = 0;
  for (int j = 0; j < 16; ++j) summs += bsums[j] * mn[j / 2];

  const uint8_t* q8 = yb + offsetof(BlockQ8_K, qs);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m1 = _mm256_set1_epi8(1);
  __m256i hbits = qh != nullptr ? load32(qh) : _mm256_setzero_si256();
  __m256i sumi = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {  // 64 elements: sub-blocks 2j (low nibbles), 2j + 1 (high)
    const __m256i q4 = load32(qs + 32 * j);
    __m256i lo = _mm256_and_si256(q4, m4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
    if (qh != nullptr) {  // fifth bit of sub-block 2j is bit 2j of qh[l]; hbits is pre-shifted
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hbits, m1), 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 1), m1), 4));
      hbits = _mm256_srli_epi16(hbits, 2);
    }
    const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(q8 + 64 * j)),
                                           _mm256_set1_epi16(static_cast<int16_t>(sc[2 * j])));
    const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(q8 + 64 * j + 32)),
                                           _mm256_set1_epi16(static_cast<int16_t>(sc[2 * j + 1])));
    sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_lo, p_hi));
  }
  *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), *acc);
  return dmin * static_cast<float>(summs);
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

float vec_dot_q4_0_q8_0(const void* w_row, const void* x_q, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / BlockQ4_0::kElems; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ4_0));
    const uint8_t* yb = y + i * static_cast<int64_t>(sizeof(BlockQ8_0));
    const __m256 d = _mm256_set1_ps(half_at(xb + offsetof(BlockQ4_0, d)) * half_at(yb + offsetof(BlockQ8_0, d)));
    const __m256i qx = _mm256_sub_epi8(nibbles32(xb + offsetof(BlockQ4_0, qs)), _mm256_set1_epi8(8));
    const __m256i qy = load32(yb + offsetof(BlockQ8_0, qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_ss(qx, qy)), acc);
  }
  return hsum(acc);
}

float vec_dot_q4_1_q8_1(const void* w_row, const void* x_q, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  __m256 acc = _mm256_setzero_ps();
  float summs = 0.0f;
  for (int64_t i = 0; i < n / BlockQ4_1::kElems; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ4_1));
    const uint8_t* yb = y + i * static_cast<int64_t>(sizeof(BlockQ8_1));
    const __m256 d = _mm256_set1_ps(half_at(xb + offsetof(BlockQ4_1, d)) * half_at(yb + offsetof(BlockQ8_1, d)));
    summs += half_at(xb + offsetof(BlockQ4_1, m)) * half_at(yb + offsetof(BlockQ8_1, s));
    const __m256i qx = nibbles32(xb + offsetof(BlockQ4_1, qs));
    const __m256i qy = load32(yb + offsetof(BlockQ8_1, qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_us(qx, qy)), acc);
  }
  return hsum(acc) + summs;
}

float vec_dot_q5_0_q8_0(const void* w_row, const void* x_q, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / BlockQ5_0::kElems; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ5_0));
    const uint8_t* yb = y + i * static_cast<int64_t>(sizeof(BlockQ8_0));
    const __m256 d = _mm256_set1_ps(half_at(xb + offsetof(BlockQ5_0, d)) * half_at(yb + offsetof(BlockQ8_0, d)));
    // q - 16 as int8: a clear fifth bit sets the top nibble (nibble - 16), a set one
    // leaves the nibble (nibble + 16 - 16).
    const __m256i high = _mm256_andnot_si256(bits32(xb + offsetof(BlockQ5_0, qh)), _mm256_set1_epi8(static_cast<char>(0xF0)));
    const __m256i qx = _mm256_or_si256(nibbles32(xb + offsetof(BlockQ5_0, qs)), high);
    const __m256i qy = load32(yb + offsetof(BlockQ8_0, qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_ss(qx, qy)), acc);
  }
  return hsum(acc);
}

float vec_dot_q5_1_q8_1(const void* w_row, const void* x_q, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  __m256 acc = _mm256_setzero_ps();
  float summs = 0.0f;
  for (int64_t i = 0; i < n / BlockQ5_1::kElems; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ5_1));
    const uint8_t* yb = y + i * static_cast<int64_t>(sizeof(BlockQ8_1));
    const __m256 d = _mm256_set1_ps(half_at(xb + offsetof(BlockQ5_1, d)) * half_at(yb + offsetof(BlockQ8_1, d)));
    summs += half_at(xb + offsetof(BlockQ5_1, m)) * half_at(yb + offsetof(BlockQ8_1, s));
    const __m256i high = _mm256_and_si256(bits32(xb + offsetof(BlockQ5_1, qh)), _mm256_set1_epi8(0x10));
    const __m256i qx = _mm256_or_si256(nibbles32(xb + offsetof(BlockQ5_1, qs)), high);
    const __m256i qy = load32(yb + offsetof(BlockQ8_1, qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_us(qx, qy)), acc);
  }
  return hsum(acc) + summs;
}

float vec_dot_q8_0_q8_0(const void* w_row, const void* x_q, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / BlockQ8_0::kElems; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ8_0));
    const uint8_t* yb = y + i * static_cast<int64_t>(sizeof(BlockQ8_0));
    const __m256 d = _mm256_set1_ps(half_at(xb + offsetof(BlockQ8_0, d)) * half_at(yb + offsetof(BlockQ8_0, d)));
    const __m256i qx = load32(xb + offsetof(BlockQ8_0, qs));
    const __m256i qy = load32(yb + offsetof(BlockQ8_0, qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_ss(qx, qy)), acc);
  }
  return hsum(acc);
}

float vec_dot_q4_K_q8_K(const void* w_row, const void* x_q, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ4_K));
    mins += q45_K_block(xb, xb + offsetof(BlockQ4_K, scales), xb + offsetof(BlockQ4_K, qs), nullptr,
                        y + i * static_cast<int64_t>(sizeof(BlockQ8_K)), &acc);
  }
  return hsum(acc) - mins;
}

float vec_dot_q5_K_q8_K(const void* w_row, const void* x_q, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ5_K));
    mins += q45_K_block(xb, xb + offsetof(BlockQ5_K, scales), xb + offsetof(BlockQ5_K, qs),
                        xb + offsetof(BlockQ5_K, qh), y + i * static_cast<int64_t>(sizeof(BlockQ8_K)), &acc);
  }
  return hsum(acc) - mins;
}

float vec_dot_q6_K_q8_K(const void* w_row, const void* x_q, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w_row);
  const auto* y = static_cast<const uint8_t*>(x_q);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const uint8_t* xb = x + i * static_cast<int64_t>(sizeof(BlockQ6_K));
    const uint8_t* yb = y + i * static_cast<int64_t>(sizeof(BlockQ8_K));
    const float d = half_at(xb + offsetof(BlockQ6_K, d)) * float_at(yb + offsetof(BlockQ8_K, d));
    int8_t scales[kQK_K / 16];
    std::memcpy(scales, xb + offsetof(BlockQ6_K, scales), sizeof(scales));
    int16_t bsums[kQK_K / 16];
    std::memcpy(bsums, yb + offsetof(BlockQ8_K, bsums), sizeof(bsums));
    // Values go in unsigned (0..63); the -32 offset comes back through the block sums.
    int offset = 0;
    for (int j = 0; j < 16; ++j) offset += scales[j] * bsums[j];
    __m256i sumi = _mm256_setr_epi32(-32 * offset, 0, 0, 0, 0, 0, 0, 0);
    const uint8_t* q8 = yb + offsetof(BlockQ8_K, qs);
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
        const __m256i p = _mm256_maddubs_epi16(q[k], load32(q8 + 32 * c));
        const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(scales[2 * c + 1]), _mm_set1_epi16(scales[2 * c]));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, sc));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

}  // namespace flashlm::avx2
