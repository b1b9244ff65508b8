// The prefill GEMM tile with VNNI: 4 weight rows x up to 4 tokens, one 32-element chunk
// per step. Per (row, token, chunk): one vpdpbusd (32 u8 x s8 products into 8 int32
// lanes, 4 per lane), one conversion and one fused multiply-add with the lane scales.
// 256-bit registers: AVX-512VL gives 32 of them, enough for the 16 accumulators, the
// panel's 4 weight chunks and 4 scale vectors; on current AMD cores 512-bit operations
// run as two halves anyway.
#include <immintrin.h>

#include "kernels/cpu/avx512/avx512_kernels.h"
#include "kernels/cpu/avx512/lane_sum.h"

namespace flashlm::avx512 {
namespace {

using gemm::kChunk;
using gemm::kPanelRows;

template <int NT>
void tile(const gemm::Panel& p, const int8_t* x, size_t x_stride, const float* yd, size_t yd_stride, float* out) {
  __m256 acc[kPanelRows][NT];
#pragma GCC unroll 4
  for (int r = 0; r < kPanelRows; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const int8_t* q = p.q;
  const float* s = p.s;
  const int32_t* b = p.bias;
  for (int64_t c = 0; c < p.n_chunks; ++c) {
    __m256i w[kPanelRows], bias[kPanelRows];
    __m256 sc[kPanelRows];
#pragma GCC unroll 4
    for (int r = 0; r < kPanelRows; ++r) {
      w[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(q + r * kChunk));
      bias[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + r * 8));
      sc[r] = _mm256_load_ps(s + r * 8);
    }
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const __m256i xv = _mm256_xor_si256(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + t * x_stride + c * kChunk)), flip);
      const __m256 dx = _mm256_broadcast_ss(yd + t * yd_stride + 2 * c + 1);
#pragma GCC unroll 4
      for (int r = 0; r < kPanelRows; ++r) {
        // Starting from the panel's -128 * sum(q) per lane makes the lane sums exact.
        const __m256i dot = _mm256_dpbusd_epi32(bias[r], xv, w[r]);
        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(sc[r], dx), acc[r][t]);
      }
    }
    q += kPanelRows * kChunk;
    s += kPanelRows * 8;
    b += kPanelRows * 8;
  }
  // The offsets: sum_j mb[r][j] * yd[t][j] over the 2 * n_chunks (m, b) / (y, dx) pairs.
  const int64_t n_pairs = p.has_offsets ? 2 * p.n_chunks : 0;
  for (int64_t j = 0; j < n_pairs; j += 8) {
    const __mmask8 mask = n_pairs - j >= 8 ? __mmask8{0xFF} : static_cast<__mmask8>((1u << (n_pairs - j)) - 1);
    __m256 mb[kPanelRows];
#pragma GCC unroll 4
    for (int r = 0; r < kPanelRows; ++r) mb[r] = _mm256_maskz_loadu_ps(mask, p.mb + r * n_pairs + j);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const __m256 v = _mm256_maskz_loadu_ps(mask, yd + t * yd_stride + j);
#pragma GCC unroll 4
      for (int r = 0; r < kPanelRows; ++r) acc[r][t] = _mm256_fmadd_ps(mb[r], v, acc[r][t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    for (int r = 0; r < kPanelRows; ++r) out[t * kPanelRows + r] = lane_sum(acc[r][t]);
  }
}

}  // namespace

void panel_tile_vnni(const gemm::Panel& p, const int8_t* x, size_t x_stride, const float* yd, size_t yd_stride,
                     int n_tok, float* out) {
  switch (n_tok) {
    case 1: tile<1>(p, x, x_stride, yd, yd_stride, out); return;
    case 2: tile<2>(p, x, x_stride, yd, yd_stride, out); return;
    case 3: tile<3>(p, x, x_stride, yd, yd_stride, out); return;
    default: tile<4>(p, x, x_stride, yd, yd_stride, out); return;
  }
}

}  // namespace flashlm::avx512
