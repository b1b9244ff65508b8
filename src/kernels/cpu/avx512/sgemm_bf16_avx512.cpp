// The BF16 register tile of kernels/cpu/sgemm.cpp (compiled with AVX512_BF16 as well as
// the avx512/ directory's flags). vdpbf16ps adds two BF16 products per F32 lane per
// instruction: on Zen 4 that is twice the multiply-adds of an F32 FMA of the same width.
#include <immintrin.h>

#include "kernels/cpu/sgemm_tile.h"

namespace flashlm::sgemm_tile {

void tile_bf16_avx512(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc, bool accumulate) {
  static_assert(kMR == 6 && kNRBf16 == 32, "the tile below is 6 x 32");
  __m512 acc[kMR][2];
  for (auto& r : acc) r[0] = r[1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kp; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 16);
    for (int64_t r = 0; r < kMR; ++r) {  // unrolled by the compiler: 12 independent chains
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
    a += kMR;
    b += kNRBf16;
  }
  for (int64_t r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
    __m512 lo = acc[r][0], hi = acc[r][1];
    if (accumulate) {
      lo = _mm512_add_ps(lo, _mm512_loadu_ps(cr));
      hi = _mm512_add_ps(hi, _mm512_loadu_ps(cr + 16));
    }
    _mm512_storeu_ps(cr, lo);
    _mm512_storeu_ps(cr + 16, hi);
  }
}

namespace {

// GCC 12's AVX-512 unpack intrinsics pass an undefined vector as their masked-off source
// and then warn that it may be used uninitialized (it is not: the mask is all ones).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// r[0..16) as rows of a 16 x 16 block of 32-bit values, transposed in place.
inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + m], 128-bit lane j: rows 4i..4i+3 of column 4j + m.
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512i p0 = _mm512_shuffle_i32x4(u[m], u[4 + m], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i p1 = _mm512_shuffle_i32x4(u[m], u[4 + m], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512i q0 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i q1 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], _MM_SHUFFLE(3, 1, 3, 1));
    r[m] = _mm512_shuffle_i32x4(p0, q0, _MM_SHUFFLE(2, 0, 2, 0));
    r[4 + m] = _mm512_shuffle_i32x4(p1, q1, _MM_SHUFFLE(2, 0, 2, 0));
    r[8 + m] = _mm512_shuffle_i32x4(p0, q0, _MM_SHUFFLE(3, 1, 3, 1));
    r[12 + m] = _mm512_shuffle_i32x4(p1, q1, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Up to 32 floats (n of them, the rest zero) as 16 BF16 pairs (element p: s[2p] low,
// s[2p + 1] high).
inline __m512i pairs32(const float* s, int64_t n) {
  const __mmask16 lo = static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
  const __mmask16 hi = static_cast<__mmask16>(n >= 32 ? 0xFFFFu : n <= 16 ? 0u : (1u << (n - 16)) - 1u);
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, s + 16), _mm512_maskz_loadu_ps(lo, s));
}

// A full 6-lane panel with each lane's steps contiguous (A, not transposed): per 32 steps,
// the 6 lanes' 16 pairs are interleaved into the 96 consecutive values the tile reads
// (pair p of lane l at 6p + l) by 18 permutes, not a padded 16x16 transpose.
void pack6_steps_contiguous(const float* src, int64_t l_stride, int64_t kc, uint32_t* dst) {
  static_assert(kMR == 6, "the interleave below is for 6 lanes");
  const int64_t kp = (kc + 1) / 2;
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  // Over 64-bit units (one pair of lanes at one p): a = lanes 0-1, b = 2-3, c = 4-5; the
  // output is a0 b0 c0 a1 b1 c1 ..., three vectors of 8 units per 8 pairs.
  const __m512i ab_idx[3] = {_mm512_setr_epi64(0, 8, 0, 1, 9, 0, 2, 10), _mm512_setr_epi64(0, 3, 11, 0, 4, 12, 0, 5),
                             _mm512_setr_epi64(13, 0, 6, 14, 0, 7, 15, 0)};
  const __m512i c_idx[3] = {_mm512_setr_epi64(0, 0, 0, 0, 0, 1, 0, 0), _mm512_setr_epi64(2, 0, 0, 3, 0, 0, 4, 0),
                            _mm512_setr_epi64(0, 5, 0, 0, 6, 0, 0, 7)};
  const __mmask8 c_mask[3] = {0x24, 0x49, 0x92};
  for (int64_t p0 = 0; p0 < kp; p0 += 16) {
    const int64_t steps = kc - 2 * p0 < 32 ? kc - 2 * p0 : 32, pairs = kp - p0 < 16 ? kp - p0 : 16;
    __m512i v[kMR];
    for (int64_t l = 0; l < kMR; ++l) v[l] = pairs32(src + l * l_stride + 2 * p0, steps);
    for (int half = 0; half < 2; ++half) {
      const __m512i idx = half == 0 ? lo_idx : hi_idx;
      const __m512i a = _mm512_permutex2var_epi32(v[0], idx, v[1]);
      const __m512i b = _mm512_permutex2var_epi32(v[2], idx, v[3]);
      const __m512i c = _mm512_permutex2var_epi32(v[4], idx, v[5]);
      for (int q = 0; q < 3; ++q) {
        const __m512i ab = _mm512_permutex2var_epi64(a, ab_idx[q], b);
        const __m512i out = _mm512_mask_permutexvar_epi64(ab, c_mask[q], c_idx[q], c);
        // Values 6 * (p0 + 8 * half) + 16 q onwards; only those of real pairs are stored.
        const int64_t first = 48 * half + 16 * q, valid = pairs * kMR - first;
        if (valid <= 0) continue;
        const __mmask16 keep = static_cast<__mmask16>(valid >= 16 ? 0xFFFFu : (1u << valid) - 1u);
        _mm512_mask_storeu_epi32(dst + p0 * kMR + first, keep, out);
      }
    }
  }
}

}  // namespace

bool pack_bf16_avx512(const float* src, int64_t l_stride, int64_t k_stride, int64_t width, int64_t lanes, int64_t kc,
                      uint32_t* dst) {
  const int64_t kp = (kc + 1) / 2;
  if (k_stride == 1) {  // each lane's steps contiguous: convert 32 steps, then transpose
    if (width != lanes || (lanes != kMR && lanes != kNRBf16)) return false;
    if (lanes == kMR) {
      pack6_steps_contiguous(src, l_stride, kc, dst);
      return true;
    }
    for (int64_t p0 = 0; p0 < kp; p0 += 16) {
      const int64_t steps = kc - 2 * p0 < 32 ? kc - 2 * p0 : 32, pairs = kp - p0 < 16 ? kp - p0 : 16;
      for (int64_t l0 = 0; l0 < lanes; l0 += 16) {
        const int64_t n = lanes - l0 < 16 ? lanes - l0 : 16;
        __m512i r[16];
        for (int64_t l = 0; l < 16; ++l) {
          r[l] = l < n ? pairs32(src + (l0 + l) * l_stride + 2 * p0, steps) : _mm512_setzero_si512();
        }
        transpose16(r);
        const __mmask16 keep = static_cast<__mmask16>((1u << n) - 1u);
        for (int64_t p = 0; p < pairs; ++p) _mm512_mask_storeu_epi32(dst + (p0 + p) * lanes + l0, keep, r[p]);
      }
    }
    return true;
  }
  if (l_stride != 1) return false;
  // Lanes contiguous: two steps' rows, converted together and interleaved into pairs.
  alignas(64) static const uint16_t kInterleave[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(kInterleave);
  for (int64_t p = 0; p < kp; ++p) {
    const float* s0 = src + 2 * p * k_stride;
    const float* s1 = 2 * p + 1 < kc ? s0 + k_stride : nullptr;
    for (int64_t l0 = 0; l0 < lanes; l0 += 16) {
      const int64_t n = width - l0 <= 0 ? 0 : width - l0 < 16 ? width - l0 : 16;
      const __mmask16 keep = static_cast<__mmask16>((1u << n) - 1u);
      const __m512 lo = _mm512_maskz_loadu_ps(keep, s0 + l0);
      const __m512 hi = s1 ? _mm512_maskz_loadu_ps(keep, s1 + l0) : _mm512_setzero_ps();
      const __m512i v = _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
      const int64_t m = lanes - l0 < 16 ? lanes - l0 : 16;
      _mm512_mask_storeu_epi32(dst + p * lanes + l0, static_cast<__mmask16>((1u << m) - 1u), v);
    }
  }
  return true;
}

}  // namespace flashlm::sgemm_tile
