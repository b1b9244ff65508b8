// AVX2 + FMA attention tile kernels (compiled with -mavx2 -mfma -mf16c; callers check
// cpu_has_avx2() first). Same contracts as the scalar versions in attention_tiles.cpp.
// As in dot_avx2.cpp, only <immintrin.h> and constants/declarations are included and
// every helper has internal linkage, so no AVX2 code can stand in for a generic inline
// function elsewhere.
//
// Register budget (16 ymm): the score kernel holds a 4-row x 3-key block of partial
// dot products (12) plus 3 key vectors and 1 query vector; the accumulate kernel holds
// 4 output rows x 24 floats (12) plus 3 value vectors and 1 broadcast weight. Both load
// 7 vectors per 12 FMAs, so they are FMA-bound rather than load-bound.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/avx2/avx2_kernels.h"
#include "kernels/cpu/exp_poly.h"

namespace flashlm::avx2 {
namespace {

namespace ep = exp_poly;

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp_poly.h's exp, eight lanes at a time; lanes below kMin (and -inf) give 0.
__m256 exp_ps(__m256 x) {
  const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(ep::kMin), _CMP_NGE_UQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(ep::kMin)), _mm256_set1_ps(ep::kMax));
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(ep::kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ep::kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ep::kLn2Lo), r);
  __m256 q = _mm256_set1_ps(ep::kC6);
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ep::kC5));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ep::kC4));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ep::kC3));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ep::kC2));
  const __m256 p = _mm256_add_ps(_mm256_fmadd_ps(q, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

// exp_poly.h's tanh: the odd polynomial below kTanhSmall, 1 - 2 / (exp(2|x|) + 1) above.
__m256 tanh_ps(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 a = _mm256_xor_ps(x, sign);
  const __m256 z = _mm256_mul_ps(a, a);
  __m256 q = _mm256_set1_ps(ep::kT4);
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(ep::kT3));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(ep::kT2));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(ep::kT1));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(ep::kT0));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(a, z), q, a);
  const __m256 e = exp_ps(_mm256_add_ps(a, a));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  const __m256 t = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, _mm256_set1_ps(ep::kTanhSmall), _CMP_LT_OQ));
  return _mm256_or_ps(t, sign);
}

// Scores of RB query rows x KB keys: RB * KB accumulators along d, reduced at the end.
template <int RB, int KB>
void score_block(const float* const* q, const float* const* k, int d, float* s, int lds) {
  __m256 acc[RB][KB];
#pragma GCC unroll 4
  for (int r = 0; r < RB; ++r) {
#pragma GCC unroll 3
    for (int j = 0; j < KB; ++j) acc[r][j] = _mm256_setzero_ps();
  }
  int i = 0;
  for (; i + 8 <= d; i += 8) {
    __m256 kv[KB];
#pragma GCC unroll 3
    for (int j = 0; j < KB; ++j) kv[j] = _mm256_loadu_ps(k[j] + i);
#pragma GCC unroll 4
    for (int r = 0; r < RB; ++r) {
      const __m256 qv = _mm256_loadu_ps(q[r] + i);
#pragma GCC unroll 3
      for (int j = 0; j < KB; ++j) acc[r][j] = _mm256_fmadd_ps(qv, kv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < RB; ++r) {
    for (int j = 0; j < KB; ++j) {
      float x = hsum(acc[r][j]);
      for (int t = i; t < d; ++t) x += q[r][t] * k[j][t];
      s[r * lds + j] = x;
    }
  }
}

using ScoreBlockFn = void (*)(const float* const*, const float* const*, int, float*, int);
constexpr ScoreBlockFn kScoreBlocks[4][3] = {
    {&score_block<1, 1>, &score_block<1, 2>, &score_block<1, 3>},
    {&score_block<2, 1>, &score_block<2, 2>, &score_block<2, 3>},
    {&score_block<3, 1>, &score_block<3, 2>, &score_block<3, 3>},
    {&score_block<4, 1>, &score_block<4, 2>, &score_block<4, 3>},
};

// o[r][c, c + 8 * NV) = o * corr + sum_j p[r][j] * v[j][c, c + 8 * NV) for RB rows.
template <int RB, int NV>
void accumulate_block(const float* p, int ldp, const float* const* v, int n_keys, int c, float* const* o,
                      const float* corr) {
  __m256 acc[RB][NV];
#pragma GCC unroll 4
  for (int r = 0; r < RB; ++r) {
    const __m256 cr = _mm256_set1_ps(corr[r]);
#pragma GCC unroll 3
    for (int u = 0; u < NV; ++u) acc[r][u] = _mm256_mul_ps(_mm256_loadu_ps(o[r] + c + 8 * u), cr);
  }
  for (int j = 0; j < n_keys; ++j) {
    __m256 vv[NV];
#pragma GCC unroll 3
    for (int u = 0; u < NV; ++u) vv[u] = _mm256_loadu_ps(v[j] + c + 8 * u);
#pragma GCC unroll 4
    for (int r = 0; r < RB; ++r) {
      const __m256 w = _mm256_broadcast_ss(p + r * ldp + j);
#pragma GCC unroll 3
      for (int u = 0; u < NV; ++u) acc[r][u] = _mm256_fmadd_ps(w, vv[u], acc[r][u]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < RB; ++r) {
#pragma GCC unroll 3
    for (int u = 0; u < NV; ++u) _mm256_storeu_ps(o[r] + c + 8 * u, acc[r][u]);
  }
}

template <int RB>
void accumulate_rows(const float* p, int ldp, const float* const* v, int n_keys, int d, float* const* o,
                     const float* corr) {
  int c = 0;
  for (; c + 24 <= d; c += 24) accumulate_block<RB, 3>(p, ldp, v, n_keys, c, o, corr);
  if (c + 16 <= d) {  // head sizes 64 and 256 end here
    accumulate_block<RB, 2>(p, ldp, v, n_keys, c, o, corr);
    c += 16;
  }
  if (c + 8 <= d) {
    accumulate_block<RB, 1>(p, ldp, v, n_keys, c, o, corr);
    c += 8;
  }
  for (int r = 0; r < RB; ++r) {
    for (int t = c; t < d; ++t) {
      float x = o[r][t] * corr[r];
      for (int j = 0; j < n_keys; ++j) x += p[r * ldp + j] * v[j][t];
      o[r][t] = x;
    }
  }
}

using AccumulateRowsFn = void (*)(const float*, int, const float* const*, int, int, float* const*, const float*);
constexpr AccumulateRowsFn kAccumulateRows[4] = {&accumulate_rows<1>, &accumulate_rows<2>, &accumulate_rows<3>,
                                                 &accumulate_rows<4>};

}  // namespace

void attn_scores(const float* const* q, int n_rows, const float* const* k, int n_keys, int d, float* s, int lds) {
  // Row blocks outer: a block's 4 query rows stay in L1 while the tile's keys stream by.
  for (int r = 0; r < n_rows; r += 4) {
    const int rb = n_rows - r < 4 ? n_rows - r : 4;
    for (int j = 0; j < n_keys; j += 3) {
      const int kb = n_keys - j < 3 ? n_keys - j : 3;
      kScoreBlocks[rb - 1][kb - 1](q + r, k + j, d, s + r * lds + j, lds);
    }
  }
}

void attn_softmax(float* s, int lds, int n_rows, int n_keys, const int* jb, const int* je, float scale,
                  float softcap, float* m, float* l, float* corr) {
  const __m256 neg_inf = _mm256_set1_ps(-__builtin_inff());
  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256 vcap = _mm256_set1_ps(softcap);
  const __m256 vinv_cap = _mm256_set1_ps(softcap > 0.0f ? 1.0f / softcap : 0.0f);
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int n_cols = (n_keys + 7) / 8 * 8;
  for (int r = 0; r < n_rows; ++r) {
    float* row = s + r * lds;
    if (jb[r] >= je[r]) {
      for (int j = 0; j < n_cols; j += 8) _mm256_storeu_ps(row + j, _mm256_setzero_ps());
      corr[r] = 1.0f;
      continue;
    }
    const __m256i lo = _mm256_set1_epi32(jb[r] - 1);
    const __m256i hi = _mm256_set1_epi32(je[r]);
    __m256 vmax = neg_inf;
    for (int j = 0; j < n_cols; j += 8) {
      __m256 x = _mm256_mul_ps(_mm256_loadu_ps(row + j), vscale);
      if (softcap > 0.0f) x = _mm256_mul_ps(vcap, tanh_ps(_mm256_mul_ps(x, vinv_cap)));
      const __m256i idx = _mm256_add_epi32(iota, _mm256_set1_epi32(j));
      const __m256i valid = _mm256_and_si256(_mm256_cmpgt_epi32(idx, lo), _mm256_cmpgt_epi32(hi, idx));
      x = _mm256_blendv_ps(neg_inf, x, _mm256_castsi256_ps(valid));
      _mm256_storeu_ps(row + j, x);
      vmax = _mm256_max_ps(vmax, x);
    }
    const float mx = hmax(vmax);
    const float m_new = m[r] > mx ? m[r] : mx;
    corr[r] = _mm256_cvtss_f32(exp_ps(_mm256_set1_ps(m[r] - m_new)));
    const __m256 vm = _mm256_set1_ps(m_new);
    __m256 vsum = _mm256_setzero_ps();
    for (int j = 0; j < n_cols; j += 8) {
      const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm));
      _mm256_storeu_ps(row + j, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    l[r] = l[r] * corr[r] + hsum(vsum);
    m[r] = m_new;
  }
}

void attn_accumulate(const float* p, int ldp, int n_rows, const float* const* v, int n_keys, int d,
                     float* const* o, const float* corr) {
  for (int r = 0; r < n_rows; r += 4) {
    const int rb = n_rows - r < 4 ? n_rows - r : 4;
    kAccumulateRows[rb - 1](p + r * ldp, ldp, v, n_keys, d, o + r, corr + r);
  }
}

// K/V tile conversions. Blocks sit unaligned in the slot (34 bytes each), so every
// load is unaligned; half scales go through F16C, which converts exactly.
namespace {

float half_to_float(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

}  // namespace

void attn_load_f16(const void* const* rows, int n_rows, int d, float* dst) {
  for (int j = 0; j < n_rows; ++j) {
    const auto* src = static_cast<const uint8_t*>(rows[j]);
    float* y = dst + static_cast<int64_t>(j) * d;
    int i = 0;
    for (; i + 8 <= d; i += 8) {
      _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i))));
    }
    for (; i < d; ++i) y[i] = half_to_float(src + 2 * i);
  }
}

void kv_store_f16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint8_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 2 * i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) {
    const uint16_t h = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
    y[2 * i] = static_cast<uint8_t>(h & 0xFF);  // little-endian, as the cache's rows
    y[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
}

void attn_load_q8_0(const void* const* rows, int n_rows, int d, float* dst) {
  constexpr int kBlockBytes = 34;  // half d, 32 x int8 (quant::BlockQ8_0)
  for (int j = 0; j < n_rows; ++j) {
    const auto* b = static_cast<const uint8_t*>(rows[j]);
    float* y = dst + static_cast<int64_t>(j) * d;
    for (int i = 0; i < d; i += 32, b += kBlockBytes, y += 32) {
      const __m256 scale = _mm256_set1_ps(half_to_float(b));
      for (int u = 0; u < 4; ++u) {
        const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + 8 * u));
        const __m256 x = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8));
        _mm256_storeu_ps(y + 8 * u, _mm256_mul_ps(x, scale));
      }
    }
  }
}

void attn_exp(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp_ps(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t t = i; t < n; ++t) tail[t - i] = x[t];
    _mm256_storeu_ps(tail, exp_ps(_mm256_loadu_ps(tail)));
    for (int64_t t = i; t < n; ++t) x[t] = tail[t - i];
  }
}

}  // namespace flashlm::avx2
