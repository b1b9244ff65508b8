#include "kernels/cpu/sgemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace flashlm {
namespace {

struct Shape {
  int64_t M, N, K;
};

class SgemmInputsTest : public ::testing::TestWithParam<SgemmInputs> {};

// Every transpose combination and beta over shapes with edges in each dimension (not
// multiples of the 6 x 16 and 6 x 32 tiles, nor of the K block; odd K for the BF16
// pairs) against the double-accumulated loop over the same rounded inputs.
TEST_P(SgemmInputsTest, MatchesTheReferenceOnEveryLayout) {
  const SgemmInputs in = GetParam();
  SgemmInputsScope scope(in);
  std::mt19937 rng(9);
  std::normal_distribution<float> dist;
  ThreadPool pool(3);
  // The last shape's K is long enough that the packed copy of its smaller operand is
  // taken in two spans of K blocks (kernels/cpu/sgemm.cpp's cap).
  for (Shape s : {Shape{1, 1, 1}, Shape{7, 17, 5}, Shape{6, 16, 256}, Shape{6, 32, 257}, Shape{13, 40, 300},
                  Shape{100, 33, 513}, Shape{97, 290, 64}, Shape{20, 40, 45000}}) {
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        for (float beta : {0.0f, 1.0f, 0.5f}) {
          const int64_t lda = (ta ? s.M : s.K) + 3, ldb = (tb ? s.K : s.N) + 1, ldc = s.N + 2;
          std::vector<float> a(static_cast<size_t>((ta ? s.K : s.M) * lda)), b(static_cast<size_t>((tb ? s.N : s.K) * ldb));
          std::vector<float> c(static_cast<size_t>(s.M * ldc));
          for (float& x : a) x = dist(rng);
          for (float& x : b) x = dist(rng);
          for (float& x : c) x = dist(rng);
          std::vector<float> want = c;
          SgemmArgs g{s.M, s.N, s.K, a.data(), lda, ta == 1, b.data(), ldb, tb == 1, c.data(), ldc, beta};
          sgemm(g, pool);
          g.C = want.data();
          sgemm_reference(g, in);
          for (int64_t i = 0; i < s.M; ++i) {
            for (int64_t j = 0; j < s.N; ++j) {
              const float got = c[static_cast<size_t>(i * ldc + j)], ref = want[static_cast<size_t>(i * ldc + j)];
              ASSERT_NEAR(got, ref, 1e-5f * std::sqrt(static_cast<float>(s.K)) * 8.0f)
                  << s.M << "x" << s.N << "x" << s.K << " ta " << ta << " tb " << tb << " beta " << beta;
            }
            // Padding columns are never touched.
            for (int64_t j = s.N; j < ldc; ++j) {
              ASSERT_EQ(c[static_cast<size_t>(i * ldc + j)], want[static_cast<size_t>(i * ldc + j)]);
            }
          }
        }
      }
    }
  }
}

TEST_P(SgemmInputsTest, ResultsDoNotDependOnTheThreadCount) {
  SgemmInputsScope scope(GetParam());
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  const int64_t M = 130, N = 300, K = 700;
  std::vector<float> a(M * K), b(K * N);
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  std::vector<float> c1(M * N), c4(M * N);
  ThreadPool p1(1), p4(4);
  sgemm({M, N, K, a.data(), K, false, b.data(), N, false, c1.data(), N, 0.0f}, p1);
  sgemm({M, N, K, a.data(), K, false, b.data(), N, false, c4.data(), N, 0.0f}, p4);
  EXPECT_EQ(c1, c4);
}

INSTANTIATE_TEST_SUITE_P(Sgemm, SgemmInputsTest, ::testing::Values(SgemmInputs::kF32, SgemmInputs::kBf16),
                         [](const ::testing::TestParamInfo<SgemmInputs>& i) {
                           return std::string(i.param == SgemmInputs::kF32 ? "F32" : "Bf16");
                         });

// BF16 rounds each input to 8 significant bits: the product differs from the F32 one by
// about 2^-8 relative per input, far more than F32's own rounding, so the rounding is
// really applied (and only inside the scope).
TEST(Sgemm, Bf16RoundsTheInputsAndOnlyInsideItsScope) {
  const int64_t M = 8, N = 40, K = 300;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist;
  std::vector<float> a(M * K), b(K * N), c32(M * N), c16(M * N), want(M * N);
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  ThreadPool pool(2);
  const SgemmArgs g{M, N, K, a.data(), K, false, b.data(), N, false, c32.data(), N, 0.0f};
  {
    SgemmInputsScope scope(SgemmInputs::kBf16);
    EXPECT_EQ(sgemm_inputs(), SgemmInputs::kBf16);
    SgemmArgs h = g;
    h.C = c16.data();
    sgemm(h, pool);
  }
  EXPECT_EQ(sgemm_inputs(), SgemmInputs::kF32);
  sgemm(g, pool);
  SgemmArgs r = g;
  r.C = want.data();
  sgemm_reference(r);
  double d32 = 0.0, d16 = 0.0;
  for (int64_t i = 0; i < M * N; ++i) {
    d32 = std::max(d32, static_cast<double>(std::fabs(c32[i] - want[i])));
    d16 = std::max(d16, static_cast<double>(std::fabs(c16[i] - want[i])));
  }
  EXPECT_LT(d32, 1e-3);
  EXPECT_GT(d16, 1e-2);  // about sqrt(K) * 2^-8 for unit normal inputs
  EXPECT_LT(d16, 1.0);
}

}  // namespace
}  // namespace flashlm
