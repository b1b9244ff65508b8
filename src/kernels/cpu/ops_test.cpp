// The dispatched row ops (ops::rms_norm, silu_mul, gelu_tanh_mul and the Q8_K activation
// quantizer) against their scalar references, on awkward lengths and special values,
// and the AVX2 exponential against std::exp. Tolerances come from the inputs: float
// rounding of each step (2^-24 relative), the exponential's own bound (2 ulp), and for
// GELU the reference's own rounding of 1 + tanh(z), which is absolute on that sum.
// Without AVX2 the dispatched ops are the references and the comparisons are exact.
#include "kernels/cpu/ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/avx2/avx2_kernels.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/vec_dot.h"
#include "quant/blocks.h"
#include "quant/quant_ref.h"

namespace flashlm {
namespace {

constexpr double kUlp = 1.0 / (1 << 23);  // ulp of 1.0f
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
const std::vector<int64_t> kLengths = {1, 7, 33, 640, 2049};

// Values that stress the activations: zeros of both signs, tiny, where e^-g and the
// GELU exponent overflow or vanish, and non-finite inputs.
const std::vector<float> kSpecial = {0.0f,   -0.0f,  1e-30f, -1e-30f, 1e-3f,   -1e-3f,  3.0f,  -3.0f,  10.0f,
                                     -10.0f, 20.0f,  -20.0f, 50.0f,   -50.0f,  87.0f,   -87.0f, 89.0f, -89.0f,
                                     104.0f, -104.0f, 1e4f,  -1e4f,   1e20f,   -1e20f,  kInf,  -kInf,  kNaN};

// Normal(0, 2) values with the special ones spread through the row.
std::vector<float> gate_row(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> g(static_cast<size_t>(n));
  for (float& v : g) v = nd(rng);
  for (size_t i = 0; i < kSpecial.size() && i < g.size(); ++i) g[(i * 37) % g.size()] = kSpecial[i];
  return g;
}

std::vector<float> up_row(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> u(static_cast<size_t>(n));
  for (float& v : u) v = nd(rng);
  return u;
}

// got equals want within tol, NaN where want is NaN, the same infinity where it is one.
void expect_close(float got, float want, double tol, const char* what, int64_t i, float in) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << what << " i=" << i << " in=" << in << " got=" << got;
  } else if (std::isinf(want)) {
    EXPECT_EQ(got, want) << what << " i=" << i << " in=" << in;
  } else {
    EXPECT_LE(std::fabs(static_cast<double>(got) - want), tol)
        << what << " i=" << i << " in=" << in << " got=" << got << " want=" << want;
  }
}

#if defined(FLASHLM_HAVE_AVX2)
TEST(OpsExp, WithinTwoUlpOfStdExp) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 kernels on this CPU (or not built)";
  std::vector<float> x;
  for (int i = 0; i <= 400000; ++i) x.push_back(-104.0f + 193.0f * static_cast<float>(i) / 400000.0f);  // -104 .. 89
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.72f, 88.7228f, -87.3f, -87.34f, -103.9f, 1.0f, -1.0f}) x.push_back(v);
  std::vector<float> y(x.size());
  avx2::exp_row(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(static_cast<double>(x[i]));
    // One ulp of the float result, subnormals included (2^-149 at the bottom).
    const float wf = static_cast<float>(want);
    const double ulp = std::isinf(wf) ? 0.0
                                      : std::nextafter(std::fabs(wf), kInf) - std::fabs(wf);
    if (std::isinf(wf)) {
      EXPECT_TRUE(std::isinf(y[i])) << x[i];
      continue;
    }
    const double err = std::fabs(y[i] - want) / ulp;
    worst = std::max(worst, err);
    ASSERT_LE(err, 2.0) << "x=" << x[i] << " got=" << y[i] << " want=" << want;
    if (want >= std::numeric_limits<float>::min()) {
      EXPECT_LE(std::fabs(y[i] - want) / want, 1e-6) << x[i];
    }
  }
  std::printf("exp: worst error %.2f ulp\n", worst);
  const std::vector<float> sx = {kInf, -kInf, kNaN, 89.0f, 200.0f, -104.0f, -1000.0f};
  std::vector<float> sy(sx.size());
  avx2::exp_row(sx.data(), sy.data(), static_cast<int64_t>(sx.size()));
  EXPECT_EQ(sy[0], kInf);
  EXPECT_EQ(sy[1], 0.0f);
  EXPECT_TRUE(std::isnan(sy[2]));
  EXPECT_EQ(sy[3], kInf);
  EXPECT_EQ(sy[4], kInf);
  EXPECT_EQ(sy[5], 0.0f);
  EXPECT_EQ(sy[6], 0.0f);
}

#endif

TEST(OpsActivation, SiluMulMatchesReference) {
  std::mt19937 rng(11);
  for (int64_t n : kLengths) {
    const std::vector<float> g = gate_row(n, rng), u = up_row(n, rng);
    std::vector<float> want(g.size()), got(g.size());
    ops::silu_mul_reference(g.data(), u.data(), want.data(), n);
    ops::silu_mul(g.data(), u.data(), got.data(), n);
    // exp within 2 ulp, then 1 + e, the division and the product: 2e-7 + 3 * 2^-24.
    for (int64_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(i);
      expect_close(got[k], want[k], 1e-6 * std::fabs(want[k]), "silu_mul", i, g[k]);
    }
    std::vector<float> in_place = g;  // y aliasing gate, as the model calls it
    ops::silu_mul(in_place.data(), u.data(), in_place.data(), n);
    EXPECT_EQ(0, std::memcmp(in_place.data(), got.data(), got.size() * sizeof(float))) << n;
  }
}

TEST(OpsActivation, GeluTanhMulMatchesReference) {
  std::mt19937 rng(12);
  for (int64_t n : kLengths) {
    const std::vector<float> g = gate_row(n, rng), u = up_row(n, rng);
    std::vector<float> want(g.size()), got(g.size());
    ops::gelu_tanh_mul_reference(g.data(), u.data(), want.data(), n);
    ops::gelu_tanh_mul(g.data(), u.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(i);
      // The reference rounds tanh(z) (glibc: within 2 ulp, at most 2^-23 absolute) and
      // then 1 + tanh(z): an absolute error on that sum, scaled by 0.5 |g u|; which
      // matters where tanh(z) is near -1 (negative g). On top, 1e-6 relative for the
      // fast version's exponential and roundings.
      const double half_gu = 0.5 * std::fabs(static_cast<double>(g[k]) * u[k]);
      expect_close(got[k], want[k], 2.0 * kUlp * half_gu + 1e-6 * std::fabs(want[k]), "gelu_tanh_mul", i, g[k]);
    }
    std::vector<float> in_place = g;
    ops::gelu_tanh_mul(in_place.data(), u.data(), in_place.data(), n);
    EXPECT_EQ(0, std::memcmp(in_place.data(), got.data(), got.size() * sizeof(float))) << n;
  }
}

// Away from where the reference itself cancels (g >= -1: 1 + tanh(z) >= 0.3), the two
// agree to 1e-6 relative.
TEST(OpsActivation, GeluTanhMulRelativeWherePositive) {
  std::vector<float> g, u;
  for (int i = 0; i <= 20000; ++i) g.push_back(-1.0f + 21.0f * static_cast<float>(i) / 20000.0f);
  u.assign(g.size(), 1.0f);
  std::vector<float> want(g.size()), got(g.size());
  const auto n = static_cast<int64_t>(g.size());
  ops::gelu_tanh_mul_reference(g.data(), u.data(), want.data(), n);
  ops::gelu_tanh_mul(g.data(), u.data(), got.data(), n);
  for (size_t k = 0; k < g.size(); ++k) {
    expect_close(got[k], want[k], 1e-6 * std::fabs(want[k]) + 1e-30, "gelu", static_cast<int64_t>(k), g[k]);
  }
}

// BERT's exact GELU: the fast erfc (1.2e-7 relative) and exponential against the double
// reference, over the range activations take and deep into both tails, every length.
TEST(OpsActivation, GeluErfMatchesReference) {
  std::vector<float> x;
  for (int i = 0; i <= 40000; ++i) x.push_back(-12.0f + 24.0f * static_cast<float>(i) / 40000.0f);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 30.0f, -30.0f, 1e4f, -1e4f}) x.push_back(v);
  const auto n = static_cast<int64_t>(x.size());
  std::vector<float> want(x.size()), got(x.size());
  ops::gelu_erf_reference(x.data(), want.data(), n);
  ops::gelu_erf(x.data(), got.data(), n);
  for (size_t k = 0; k < x.size(); ++k) {
    // Relative; in the negative tail the float rounding of x^2 / 2 (2^-24 relative) is
    // an absolute error of the exponent, so the bound grows with x^2 (1e-5 at x = -10,
    // where gelu is 1e-22).
    const double x2 = static_cast<double>(x[k]) * x[k];
    expect_close(got[k], want[k], (4e-7 + 1.2e-7 * x2) * std::fabs(want[k]) + 1e-37, "gelu_erf",
                 static_cast<int64_t>(k), x[k]);
  }
  std::mt19937 rng(13);
  for (int64_t len : kLengths) {  // every tail length, in place
    const std::vector<float> in = gate_row(len, rng);
    std::vector<float> g = in, ref(g.size());
    ops::gelu_erf_reference(g.data(), ref.data(), len);
    ops::gelu_erf(g.data(), g.data(), len);
    for (int64_t i = 0; i < len; ++i) {
      const size_t k = static_cast<size_t>(i);
      const double x2 = static_cast<double>(in[k]) * in[k];
      expect_close(g[k], ref[k], (4e-7 + 1.2e-7 * x2) * std::fabs(ref[k]) + 1e-37, "gelu_erf in place", i, ref[k]);
    }
  }
}

TEST(OpsRmsNorm, MatchesReference) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t n : kLengths) {
    for (float magnitude : {1.0f, 1e-20f, 1e18f}) {
      std::vector<float> x(static_cast<size_t>(n)), w(static_cast<size_t>(n));
      for (float& v : x) v = magnitude * nd(rng);
      for (float& v : w) v = 1.0f + 0.1f * nd(rng);
      for (const float* wp : {static_cast<const float*>(w.data()), static_cast<const float*>(nullptr)}) {
        std::vector<float> want(x.size()), got(x.size());
        ops::rms_norm_reference(x.data(), wp, want.data(), n, 1e-6f);
        ops::rms_norm(x.data(), wp, got.data(), n, 1e-6f);
        // Only the double sum's order differs: at most one ulp of the scale factor.
        for (size_t k = 0; k < x.size(); ++k) {
          expect_close(got[k], want[k], kUlp * std::fabs(want[k]), "rms_norm", static_cast<int64_t>(k), x[k]);
        }
        std::vector<float> in_place = x;
        ops::rms_norm(in_place.data(), wp, in_place.data(), n, 1e-6f);
        EXPECT_EQ(0, std::memcmp(in_place.data(), got.data(), got.size() * sizeof(float))) << n;
      }
    }
    const std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
    std::vector<float> out(zeros.size(), 1.0f);
    ops::rms_norm(zeros.data(), nullptr, out.data(), n, 1e-6f);
    for (float v : out) EXPECT_EQ(v, 0.0f);
  }
}

// ---- Q8_K activation quantizer: the reference's bytes exactly ----

std::vector<uint8_t> q8_K_reference(const std::vector<float>& x) {
  std::vector<uint8_t> out(x.size() / quant::kQK_K * sizeof(quant::BlockQ8_K));
  quant::quantize_row<quant::BlockQ8_K>(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

// Blocks that probe every branch: which sign of the largest magnitude comes first,
// zero and non-finite blocks, ties at half steps, codes at the -128/127 clamp.
std::vector<std::vector<float>> q8_K_cases(std::mt19937& rng) {
  constexpr int64_t kB = quant::kQK_K;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<std::vector<float>> cases;
  auto block = [&](float s) {
    std::vector<float> b(kB);
    for (float& v : b) v = s * nd(rng);
    return b;
  };
  for (float s : {1.0f, 1e-3f, 1e20f, 1e-38f}) cases.push_back(block(s));
  auto with = [&](std::initializer_list<std::pair<int, float>> set) {
    std::vector<float> b = block(1.0f);
    for (auto [i, v] : set) b[static_cast<size_t>(i)] = v;
    cases.push_back(b);
  };
  with({{10, 9.0f}, {200, -9.0f}});   // +max first, -max later
  with({{10, -9.0f}, {200, 9.0f}});   // -max first
  with({{0, 9.0f}, {255, -9.0f}});
  with({{5, -9.0f}});                 // only -max
  with({{5, 9.0f}});                  // only +max
  with({{7, kNaN}, {100, 5.0f}});     // NaN: code 0, never the max
  with({{7, kInf}});                  // an infinity: all-zero block
  with({{9, -kInf}, {20, kNaN}});
  cases.push_back(std::vector<float>(kB, 0.0f));
  cases.push_back(std::vector<float>(kB, -0.0f));
  cases.push_back(std::vector<float>(kB, kNaN));  // no finite max: all-zero block
  cases.push_back(std::vector<float>(kB, 3.0f));  // every code at the clamp
  std::vector<float> ties(kB);  // max -127 makes the scale 1: x itself is rounded
  for (int64_t i = 0; i < kB; ++i) ties[static_cast<size_t>(i)] = static_cast<float>(i % 254 - 127) + 0.5f;  // -126.5 .. 126.5
  ties[0] = -127.0f;
  cases.push_back(ties);
  std::vector<float> denorm = block(1e-40f);  // subnormal inputs: the scale overflows
  cases.push_back(denorm);
  return cases;
}

#if defined(FLASHLM_HAVE_AVX2)
TEST(OpsQuantizeQ8K, FastEqualsReferenceBytes) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 kernels on this CPU (or not built)";
  std::mt19937 rng(14);
  const auto cases = q8_K_cases(rng);
  for (size_t c = 0; c < cases.size(); ++c) {
    const std::vector<uint8_t> want = q8_K_reference(cases[c]);
    std::vector<uint8_t> got(want.size(), 0xAB);
    avx2::quantize_row_q8_K(cases[c].data(), got.data(), quant::kQK_K);
    ASSERT_EQ(got, want) << "case " << c;
  }
  // Rows of several blocks, mixed.
  std::vector<float> row;
  for (const auto& b : cases) row.insert(row.end(), b.begin(), b.end());
  const std::vector<uint8_t> want = q8_K_reference(row);
  std::vector<uint8_t> got(want.size());
  avx2::quantize_row_q8_K(row.data(), got.data(), static_cast<int64_t>(row.size()));
  EXPECT_EQ(got, want);
}

#endif

// Every K-quant weight type's dispatched quantizer writes the reference's bytes.
TEST(OpsQuantizeQ8K, DispatchedEqualsReference) {
  std::mt19937 rng(15);
  std::vector<float> row;
  for (const auto& b : q8_K_cases(rng)) row.insert(row.end(), b.begin(), b.end());
  const std::vector<uint8_t> want = q8_K_reference(row);
  for (DType t : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const VecDotTraits& vt = vec_dot_traits(t);
    ASSERT_EQ(vt.vec_dot_type, DType::Q8_K);
    std::vector<uint8_t> got(vt.row_bytes(static_cast<int64_t>(row.size())));
    vt.quantize_row(row.data(), got.data(), static_cast<int64_t>(row.size()));
    EXPECT_EQ(got, want) << static_cast<int>(t);
  }
}

}  // namespace
}  // namespace flashlm
