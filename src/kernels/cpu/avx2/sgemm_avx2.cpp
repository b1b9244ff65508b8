// The AVX2/FMA register tile of kernels/cpu/sgemm.cpp (compiled with -mavx2 -mfma).
#include <immintrin.h>

#include "kernels/cpu/sgemm_tile.h"

namespace flashlm::sgemm_tile {

void tile_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  static_assert(kMR == 6 && kNR == 16, "the tile below is 6 x 16");
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps();
  __m256 c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps();
  __m256 c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    a += kMR;
    b += kNR;
  }
  const __m256 rows[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int64_t r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
    __m256 lo = rows[r][0], hi = rows[r][1];
    if (accumulate) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(cr));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(cr + 8));
    }
    _mm256_storeu_ps(cr, lo);
    _mm256_storeu_ps(cr + 8, hi);
  }
}

namespace {

// r[0..8) as rows of an 8 x 8 block, transposed in place (r[i] becomes column i).
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

}  // namespace

void pack6_avx2(const float* src, int64_t l_stride, int64_t kc, float* dst) {
  static_assert(kMR == 6, "the packing below fills 6 lanes");
  const __m256i first6 = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    __m256 r[8];
    for (int64_t l = 0; l < kMR; ++l) r[l] = _mm256_loadu_ps(src + l * l_stride + k);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8(r);
    for (int64_t i = 0; i < 8; ++i) _mm256_maskstore_ps(dst + (k + i) * kMR, first6, r[i]);
  }
  for (; k < kc; ++k) {
    for (int64_t l = 0; l < kMR; ++l) dst[k * kMR + l] = src[l * l_stride + k];
  }
}

void pack16_avx2(const float* src, int64_t l_stride, int64_t kc, float* dst) {
  static_assert(kNR == 16, "the packing below fills 16 lanes");
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    for (int64_t half = 0; half < 2; ++half) {
      // Eight lanes' next 8 values, transposed in registers: row i becomes step k + i.
      __m256 r[8];
      for (int64_t l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(src + (half * 8 + l) * l_stride + k);
      transpose8(r);
      for (int64_t i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (k + i) * kNR + half * 8, r[i]);
    }
  }
  for (; k < kc; ++k) {
    for (int64_t l = 0; l < kNR; ++l) dst[k * kNR + l] = src[l * l_stride + k];
  }
}

}  // namespace flashlm::sgemm_tile
