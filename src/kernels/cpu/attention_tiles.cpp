// Portable versions of the attention tile kernels, and the run-time choice between them
// and the AVX2 ones. The scalar exp/tanh follow exp_poly.h step by step, as the vector
// versions do.
#include "kernels/cpu/attention_tiles.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "kernels/cpu/avx2/avx2_kernels.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/exp_poly.h"
#include "quant/quant.h"

namespace flashlm {
namespace {

namespace ep = exp_poly;

float exp_fast(float x) {
  if (!(x >= ep::kMin)) return 0.0f;  // also -inf; NaN never reaches here from scores
  x = std::min(x, ep::kMax);
  // Round to nearest by the 1.5 * 2^23 trick: |x * log2e| < 2^22.
  constexpr float kRound = 12582912.0f;
  const float n = (x * ep::kLog2e + kRound) - kRound;
  float r = x - n * ep::kLn2Hi;
  r = r - n * ep::kLn2Lo;
  float q = ep::kC6;
  q = q * r + ep::kC5;
  q = q * r + ep::kC4;
  q = q * r + ep::kC3;
  q = q * r + ep::kC2;
  const float p = (q * (r * r) + r) + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return p * scale;
}

float tanh_fast(float x) {
  const float a = std::fabs(x);
  float t;
  if (a < ep::kTanhSmall) {
    const float z = a * a;
    float q = ep::kT4;
    q = q * z + ep::kT3;
    q = q * z + ep::kT2;
    q = q * z + ep::kT1;
    q = q * z + ep::kT0;
    t = a + a * z * q;
  } else {
    t = 1.0f - 2.0f / (exp_fast(2.0f * a) + 1.0f);
  }
  return std::copysign(t, x);
}

void scores_scalar(const float* const* q, int n_rows, const float* const* k, int n_keys, int d, float* s,
                   int lds) {
  for (int r = 0; r < n_rows; ++r) {
    for (int j = 0; j < n_keys; ++j) {
      // Eight partial sums, as ops::dot does, so the compiler can vectorise.
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int i = 0;
      for (; i + 8 <= d; i += 8) {
        for (int u = 0; u < 8; ++u) acc[u] += q[r][i + u] * k[j][i + u];
      }
      float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
      for (; i < d; ++i) sum += q[r][i] * k[j][i];
      s[r * lds + j] = sum;
    }
  }
}

void softmax_scalar(float* s, int lds, int n_rows, int n_keys, const int* jb, const int* je, float scale,
                    float softcap, float* m, float* l, float* corr) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int n_cols = (n_keys + 7) / 8 * 8;
  for (int r = 0; r < n_rows; ++r) {
    float* row = s + r * lds;
    if (jb[r] >= je[r]) {
      std::fill(row, row + n_cols, 0.0f);
      corr[r] = 1.0f;
      continue;
    }
    float mx = kNegInf;
    for (int j = 0; j < n_cols; ++j) {
      float x = kNegInf;
      if (j >= jb[r] && j < je[r]) {
        x = row[j] * scale;
        if (softcap > 0.0f) x = softcap * tanh_fast(x / softcap);
      }
      row[j] = x;
      mx = std::max(mx, x);
    }
    const float m_new = std::max(m[r], mx);
    corr[r] = exp_fast(m[r] - m_new);
    float sum = 0.0f;
    for (int j = 0; j < n_cols; ++j) sum += (row[j] = exp_fast(row[j] - m_new));
    l[r] = l[r] * corr[r] + sum;
    m[r] = m_new;
  }
}

void accumulate_scalar(const float* p, int ldp, int n_rows, const float* const* v, int n_keys, int d,
                       float* const* o, const float* corr) {
  for (int r = 0; r < n_rows; ++r) {
    float* orow = o[r];
    for (int i = 0; i < d; ++i) orow[i] *= corr[r];
    for (int j = 0; j < n_keys; ++j) {
      const float w = p[r * ldp + j];
      const float* vj = v[j];
      for (int i = 0; i < d; ++i) orow[i] += w * vj[i];
    }
  }
}

void load_scalar(DType type, const void* const* rows, int n_rows, int d, float* dst) {
  const ToFloatFn to_float = type_traits(type).to_float;
  for (int j = 0; j < n_rows; ++j) to_float(rows[j], dst + static_cast<int64_t>(j) * d, d);
}

void exp_scalar(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = exp_fast(x[i]);
}

constexpr AttnTileKernels kScalar = {"scalar",     &scores_scalar, &softmax_scalar,
                                     &accumulate_scalar, &load_scalar, &exp_scalar};

#if defined(FLASHLM_HAVE_AVX2)
// The AVX2 row converters, one per stored type (this file is built without AVX2 flags,
// so the choice is made here).
void load_avx2(DType type, const void* const* rows, int n_rows, int d, float* dst) {
  switch (type) {
    case DType::F16:
      avx2::attn_load_f16(rows, n_rows, d, dst);
      return;
    case DType::Q8_0:
      avx2::attn_load_q8_0(rows, n_rows, d, dst);
      return;
    default:
      load_scalar(type, rows, n_rows, d, dst);
  }
}

constexpr AttnTileKernels kAvx2 = {"avx2",      &avx2::attn_scores, &avx2::attn_softmax, &avx2::attn_accumulate,
                                   &load_avx2, &avx2::attn_exp};
#endif

}  // namespace

const AttnTileKernels& attn_tile_kernels_scalar() { return kScalar; }

const AttnTileKernels* attn_tile_kernels_avx2() {
#if defined(FLASHLM_HAVE_AVX2)
  if (cpu_has_avx2()) return &kAvx2;
#endif
  return nullptr;
}

const AttnTileKernels& attn_tile_kernels_best() {
  static const AttnTileKernels* const best = [] {
    const AttnTileKernels* k = attn_tile_kernels_avx2();
    return k != nullptr ? k : &kScalar;
  }();
  return *best;
}

}  // namespace flashlm
