// Q8_K activation rows with AVX2 (compiled with -mavx2 -mfma -mf16c; callers check
// cpu_has_avx2() first). Writes exactly the bytes of the scalar reference,
// quant::quantize_block(const float*, BlockQ8_K&) (ggml's quantize_row_q8_K_ref, which
// x86 llama.cpp also runs): the K-quant goldens depend on every code.
//
// As in dot_avx2.cpp, only <immintrin.h>, the block structs and our own declarations
// are included, and helpers have internal linkage, so no AVX2 code can stand in for a
// shared inline function elsewhere.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/avx2/avx2_kernels.h"
#include "quant/blocks.h"

namespace flashlm::avx2 {
namespace {

using quant::BlockQ8_K;
using quant::kQK_K;

float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// The reference's `max`: the first element whose magnitude is the block's largest
// (NaN never wins a comparison). Only the sign is in question once amax is known, and
// only a block holding both +amax and -amax needs the scan.
float signed_max(const float* xb, float hi, float lo, float amax) {
  if (hi != amax) return -amax;
  if (lo != -amax) return amax;
  for (int64_t j = 0; j < kQK_K; ++j) {
    if (xb[j] == amax || xb[j] == -amax) return xb[j];
  }
  return amax;  // unreachable: amax occurs in the block
}

void quantize_block(const float* xb, uint8_t* ob) {
  // max/min ignore NaN lanes: with a NaN first operand they return the second.
  __m256 hi = _mm256_setzero_ps(), lo = _mm256_setzero_ps();
  for (int64_t j = 0; j < kQK_K; j += 8) {
    const __m256 v = _mm256_loadu_ps(xb + j);
    hi = _mm256_max_ps(v, hi);
    lo = _mm256_min_ps(v, lo);
  }
  const float h = hmax(hi), l = hmin(lo);
  const float amax = h > -l ? h : -l;
  if (amax == 0.0f || amax > 3.40282347e38f) {  // all zero, or an infinity: no usable scale
    std::memset(ob, 0, sizeof(BlockQ8_K));
    return;
  }
  const float iscale = -127.0f / signed_max(xb, h, l, amax);
  const __m256 vs = _mm256_set1_ps(iscale);
  int16_t bsums[kQK_K / 16];
  for (int64_t c = 0; c < kQK_K / 32; ++c) {  // 32 elements: two of the 16-element sums
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      __m256 v = _mm256_mul_ps(vs, _mm256_loadu_ps(xb + 32 * c + 8 * k));
      v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));  // NaN -> 0
      v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
      q[k] = _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // packs interleaves 128-bit lanes; the permute puts the 32 codes back in order.
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    const __m256i codes = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ob + offsetof(BlockQ8_K, qs) + 32 * c), codes);
    // Elements 0..15 are q[0], q[1]; 16..31 are q[2], q[3]. Two horizontal adds leave
    // each half's sum split over the two 128-bit lanes.
    const __m256i h1 = _mm256_hadd_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    const __m256i h2 = _mm256_hadd_epi32(h1, h1);
    const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h2), _mm256_extracti128_si256(h2, 1));
    bsums[2 * c] = static_cast<int16_t>(_mm_cvtsi128_si32(s));
    bsums[2 * c + 1] = static_cast<int16_t>(_mm_extract_epi32(s, 1));
  }
  std::memcpy(ob + offsetof(BlockQ8_K, bsums), bsums, sizeof(bsums));
  const float d = 1.0f / iscale;
  std::memcpy(ob + offsetof(BlockQ8_K, d), &d, sizeof(d));
}

}  // namespace

void quantize_row_q8_K(const float* x, void* dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    quantize_block(x + i * kQK_K, out + i * static_cast<int64_t>(sizeof(BlockQ8_K)));
  }
}

}  // namespace flashlm::avx2
