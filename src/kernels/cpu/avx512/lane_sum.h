// The fixed 8-lane sum that ends every (row, token) of the int8 path: the prefill tile
// (gemm_vnni.cpp) and the decode kernels (gemv_vnni.cpp) must add the lanes in the same
// tree for their results to be the same bits, so both take it from here. Included only
// by AVX-512 translation units; internal linkage, as every helper compiled with ISA flags
// (see avx2/dot_avx2.cpp).
#pragma once

#include <immintrin.h>

namespace flashlm::avx512 {
namespace {

inline float lane_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace flashlm::avx512
