// Row ops with AVX2 + FMA (compiled with -mavx2 -mfma -mf16c; callers check
// cpu_has_avx2() first). The scalar references are in ops.cpp; what may differ from
// them is written beside each function.
//
// As in dot_avx2.cpp, only <immintrin.h> and our own declarations are included (no
// <cmath>: an inline function from a shared header emitted here with AVX2 flags could be
// the copy the linker keeps), and helpers have internal linkage. Row tails go through
// the same vector code under a load/store mask, so every element of a row is computed
// the same way whatever its index.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/avx2/avx2_kernels.h"

namespace flashlm::avx2 {
namespace {

// Lanes 0..m-1 set (0 <= m <= 8): the mask for a row's last partial vector.
__m256i tail_mask(int64_t m) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(m)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// e^x, within 2 ulp over the whole float range. x = n ln2 + r with |r| <= ln2 / 2;
// e^r from a degree-6 polynomial (coefficients fitted by weighted least squares with
// Lawson iterations to the relative error on that interval: 1.7e-8 before float
// rounding), then scaled by 2^n. 2^n is applied as two factors so that results near
// FLT_MAX and in the subnormal range need no special cases: both factors are normal,
// and only the last product rounds. Inputs are clamped first (e^89 overflows to inf,
// e^-104 rounds to 0); NaN passes through min/max as the second operand and stays NaN.
__m256 exp8(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-104.0f), _mm256_min_ps(_mm256_set1_ps(89.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 in two parts (Cody-Waite): n * 0.693359375 is exact for |n| < 2^15.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(0.0013843653723597527f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.00837415549904108f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.04166800156235695f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.16666431725025177f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.4999999403953552f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);  // -150 .. 129 after the clamp
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// silu(g) * u = g / (1 + e^-g) * u, in the reference's order.
__m256 silu_mul8(__m256 g, __m256 u) {
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

// gelu_tanh(g) = 0.5 g (1 + tanh z), z = sqrt(2/pi) (g + 0.044715 g^3), computed as the
// equal g / (1 + e^(-2z)): one exponential, and no cancellation in 1 + tanh z for
// negative g (where the reference loses relative precision, not this).
__m256 gelu_tanh_mul8(__m256 g, __m256 u) {
  constexpr float kM2SqrtTwoOverPi = -2.0f * 0.7978845608028654f;
  const __m256 c1 = _mm256_set1_ps(kM2SqrtTwoOverPi);
  const __m256 c3 = _mm256_set1_ps(kM2SqrtTwoOverPi * 0.044715f);
  const __m256 m2z = _mm256_mul_ps(g, _mm256_fmadd_ps(_mm256_mul_ps(g, g), c3, c1));
  const __m256 e = exp8(m2z);
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

template <__m256 (*Op)(__m256, __m256)>
void binary_row(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, Op(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, Op(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m)));
  }
}

}  // namespace

void silu_mul(const float* gate, const float* up, float* y, int64_t n) { binary_row<&silu_mul8>(gate, up, y, n); }

void gelu_tanh_mul(const float* gate, const float* up, float* y, int64_t n) {
  binary_row<&gelu_tanh_mul8>(gate, up, y, n);
}

// gelu(x) = x (1 - erfc(x / sqrt 2) / 2). erfc(|z|) = t e^(-z^2 + P(t)), t = 1 / (1 + |z|/2),
// P the degree-9 polynomial of Numerical Recipes' erfcc (relative error below 1.2e-7);
// erfc(-|z|) = 2 - erfc(|z|). For negative x this is x e^(..) t / 2 directly, so the
// small tail keeps its relative precision.
static __m256 gelu_erf8(__m256 x) {
  const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
  const __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(az, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(0.17087277f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
  p = _mm256_fnmadd_ps(az, az, p);  // -z^2 + P(t)
  const __m256 half_erfc = _mm256_mul_ps(_mm256_mul_ps(t, exp8(p)), _mm256_set1_ps(0.5f));  // erfc(|z|) / 2
  const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 phi = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), half_erfc), half_erfc, neg);
  return _mm256_mul_ps(x, phi);
}

namespace {

template <__m256 (*Op)(__m256)>
void unary_row(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, Op(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, Op(_mm256_maskload_ps(x + i, m)));
  }
}

}  // namespace

void gelu_erf(const float* x, float* y, int64_t n) { unary_row<&gelu_erf8>(x, y, n); }

void exp_row(const float* x, float* y, int64_t n) { unary_row<&exp8>(x, y, n); }

// The reference's sum of squares in double, in four-lane double vectors (x^2 of a float
// is exact in double, so only the order of the additions differs; the float that comes
// out of it is the reference's except at a rounding boundary), then the same
// y = x * inv * w products.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 4; ++k) {
      const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k));
      acc[k] = _mm256_fmadd_pd(v, v, acc[k]);
    }
  }
  for (; i + 4 <= n; i += 4) {
    const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
    acc[0] = _mm256_fmadd_pd(v, v, acc[0]);
  }
  const __m256d s4 = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
  __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
  double ss = _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  const float ms = static_cast<float>(ss / static_cast<double>(n)) + eps;
  const float inv = 1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(ms)));
  const __m256 vinv = _mm256_set1_ps(inv);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j), vinv);
    if (w != nullptr) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + j));
    _mm256_storeu_ps(y + j, v);
  }
  if (j < n) {
    const __m256i m = tail_mask(n - j);
    __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + j, m), vinv);
    if (w != nullptr) v = _mm256_mul_ps(v, _mm256_maskload_ps(w + j, m));
    _mm256_maskstore_ps(y + j, m, v);
  }
}

}  // namespace flashlm::avx2
