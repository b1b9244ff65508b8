// RoPE from a per-token cos/sin table (RopeFreqs + rope_apply) against ops::rope, the
// reference that computes the angles per head: both styles, partial rotation, frequency
// factors, linear scaling, long positions. The angles are the same floats, so the
// results agree to float rounding of a * c - b * s (exactly, without FMA contraction).
#include "kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace flashlm::ops {
namespace {

constexpr double kUlp = 1.0 / (1 << 23);

struct Config {
  int64_t head_dim, n_rot;
  float base, scale;
  bool factors;
  RopeStyle style;
};

TEST(RopeTable, MatchesPerHeadReference) {
  const Config configs[] = {
      {256, 256, 10000.0f, 1.0f, false, RopeStyle::kNeox},   // Gemma 3 local layers
      {256, 256, 1e6f, 0.125f, false, RopeStyle::kNeox},     // Gemma 3 global layers, linear scaling
      {64, 64, 10000.0f, 1.0f, false, RopeStyle::kNorm},     // Llama / SmolLM2
      {128, 128, 500000.0f, 1.0f, true, RopeStyle::kNorm},   // Llama 3.1 frequency factors
      {128, 64, 10000.0f, 1.0f, false, RopeStyle::kNeox},    // partial rotation
      {96, 34, 10000.0f, 0.5f, true, RopeStyle::kNorm},      // odd half, partial
      {2, 2, 10000.0f, 1.0f, false, RopeStyle::kNeox},
  };
  std::mt19937 rng(21);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ff(1.0f, 8.0f);
  for (const Config& c : configs) {
    std::vector<float> factors(static_cast<size_t>(c.n_rot / 2));
    for (float& f : factors) f = ff(rng);
    const float* fp = c.factors ? factors.data() : nullptr;
    const RopeFreqs freqs(c.n_rot, c.base, c.scale, fp);
    EXPECT_TRUE(freqs.same_as(c.n_rot, c.base, c.scale));
    EXPECT_FALSE(freqs.same_as(c.n_rot, c.base * 2.0f, c.scale));
    std::vector<float> cs(static_cast<size_t>(c.n_rot));
    for (int64_t pos : {0, 1, 7, 33, 640, 2049, 131071, 1000000}) {
      freqs.cos_sin(pos, cs.data());
      for (int head = 0; head < 3; ++head) {  // one table, several heads
        std::vector<float> x(static_cast<size_t>(c.head_dim));
        for (float& v : x) v = 3.0f * nd(rng);
        if (head == 2) x[0] = 0.0f, x[1] = -1e30f;  // zero and large values
        std::vector<float> want = x, got = x;
        rope(want.data(), c.head_dim, c.n_rot, pos, c.base, c.scale, c.style, fp);
        rope_apply(got.data(), c.n_rot, c.style, cs.data());
        for (size_t i = 0; i < x.size(); ++i) {
          // Each output is a * c - b * s (or a * s + b * c) of a pair (a, b): two
          // products and a sum, so a few ulp of |a| + |b|.
          const size_t half = static_cast<size_t>(c.n_rot / 2);
          size_t j = i;  // i's partner in its pair
          if (i < static_cast<size_t>(c.n_rot)) {
            j = c.style == RopeStyle::kNeox ? (i < half ? i + half : i - half) : (i ^ 1u);
          }
          const double tol = 4.0 * kUlp * (std::fabs(x[i]) + std::fabs(x[j]));
          ASSERT_LE(std::fabs(static_cast<double>(got[i]) - want[i]), tol)
              << "n_rot=" << c.n_rot << " pos=" << pos << " i=" << i;
        }
      }
    }
  }
}

// The table itself: ggml's recurrence (theta_0 = pos, theta_{i+1} = fl(theta_i * r) with
// r = powf(base, -2/n_rot), angle = fl(scale * fl(theta_i / factor_i))) replayed here,
// its cos and sin taken in long double: the table holds them to float rounding.
TEST(RopeTable, CosSinFollowGgmlRecurrence) {
  const int64_t n_rot = 128;
  std::vector<float> factors(n_rot / 2);
  for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + static_cast<float>(i % 5);
  const RopeFreqs freqs(n_rot, 500000.0f, 0.25f, factors.data());
  const float r = std::pow(500000.0f, -2.0f / static_cast<float>(n_rot));
  std::vector<float> cs(n_rot);
  for (int64_t pos : {0, 5, 4096, 100000}) {
    freqs.cos_sin(pos, cs.data());
    volatile float theta = static_cast<float>(pos);  // volatile: one float rounding per step
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const float angle = 0.25f * (theta / factors[static_cast<size_t>(i)]);
      const long double a = angle;
      EXPECT_NEAR(cs[static_cast<size_t>(i)], static_cast<double>(std::cos(a)), kUlp) << pos << " " << i;
      EXPECT_NEAR(cs[static_cast<size_t>(n_rot / 2 + i)], static_cast<double>(std::sin(a)), kUlp) << pos << " " << i;
      theta = theta * r;
    }
  }
}

// The recurrence stays close to the exact angle pos * scale * base^(-2i/n_rot) / factor_i:
// r carries one rounding (relative 2^-24), each step one more, so angle i is within
// (2i + 3) * 2^-24 of it, relative.
TEST(RopeTable, AnglesNearTheExactOnes) {
  const int64_t n_rot = 128;
  const RopeFreqs freqs(n_rot, 10000.0f, 1.0f, nullptr);
  std::vector<float> cs(n_rot);
  for (int64_t pos : {1, 777, 4096}) {
    freqs.cos_sin(pos, cs.data());
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const long double exact =
          static_cast<long double>(pos) * std::pow(10000.0L, -2.0L * static_cast<long double>(i) / n_rot);
      const double drift = static_cast<double>(exact) * static_cast<double>(2 * i + 3) / (1 << 24);
      EXPECT_NEAR(cs[static_cast<size_t>(i)], static_cast<double>(std::cos(exact)), drift + kUlp) << pos << " " << i;
      EXPECT_NEAR(cs[static_cast<size_t>(n_rot / 2 + i)], static_cast<double>(std::sin(exact)), drift + kUlp)
          << pos << " " << i;
    }
  }
}

}  // namespace
}  // namespace flashlm::ops
