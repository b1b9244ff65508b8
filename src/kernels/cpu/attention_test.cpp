// Paged online-softmax attention against a direct two-pass softmax in double, over a
// shuffled block table, with grouped-query heads, windows and softcapping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"

namespace flashlm {
namespace {

struct Fixture {
  int n_head = 4, n_head_kv = 2, head_dim = 16, block_size = 4, n_pos = 37;
  std::vector<float> k, v, q;
  std::vector<int32_t> table;
  int64_t kv_dim() const { return static_cast<int64_t>(n_head_kv) * head_dim; }

  explicit Fixture(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int n_blocks = (n_pos + block_size - 1) / block_size + 3;  // spare blocks unused
    k.resize(static_cast<size_t>(n_blocks * block_size * kv_dim()));
    v.resize(k.size());
    for (auto& x : k) x = nd(rng);
    for (auto& x : v) x = nd(rng);
    q.resize(static_cast<size_t>(n_head * head_dim));
    for (auto& x : q) x = nd(rng);
    table.resize(static_cast<size_t>(n_blocks));
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);  // logical block i -> any physical block
  }

  const float* slot(const std::vector<float>& pool, int64_t pos, int kvh) const {
    const int64_t b = table[static_cast<size_t>(pos / block_size)];
    return pool.data() + (b * block_size + pos % block_size) * kv_dim() + kvh * head_dim;
  }

  // Direct reference: scores, max, exp, normalise, weighted sum — all in double.
  std::vector<double> reference(int64_t first, int64_t last, float scale, float softcap) const {
    std::vector<double> out(static_cast<size_t>(n_head * head_dim), 0.0);
    const int group = n_head / n_head_kv;
    for (int h = 0; h < n_head; ++h) {
      std::vector<double> s;
      for (int64_t p = first; p <= last; ++p) {
        double d = 0.0;
        const float* kp = slot(k, p, h / group);
        for (int i = 0; i < head_dim; ++i) d += static_cast<double>(q[static_cast<size_t>(h * head_dim + i)]) * kp[i];
        d *= scale;
        if (softcap > 0.0f) d = softcap * std::tanh(d / softcap);
        s.push_back(d);
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0.0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t p = first; p <= last; ++p) {
        const float* vp = slot(v, p, h / group);
        for (int i = 0; i < head_dim; ++i) out[static_cast<size_t>(h * head_dim + i)] += s[static_cast<size_t>(p - first)] / sum * vp[i];
      }
    }
    return out;
  }
};

void check(const Fixture& f, int64_t first, int64_t last, float softcap) {
  PagedKvView view{f.k.data(), f.v.data(), f.kv_dim(), f.block_size, f.table.data()};
  AttentionParams p{f.n_head, f.n_head_kv, f.head_dim, 1.0f / std::sqrt(static_cast<float>(f.head_dim)), softcap};
  std::vector<float> out(static_cast<size_t>(f.n_head * f.head_dim));
  attention_paged(f.q.data(), view, p, first, last, 0, f.n_head, out.data());
  const std::vector<double> ref = f.reference(first, last, p.scale, softcap);
  // The output is a convex combination of V rows: error bound from float rounding of
  // n scores and weights, scaled by max |v|.
  double vmax = 0.0;
  for (float x : f.v) vmax = std::max(vmax, static_cast<double>(std::fabs(x)));
  const double tol = 64.0 * (last - first + 1 + f.head_dim) * 1.2e-7 * vmax;
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], tol) << "element " << i;
}

TEST(Attention, FullCausalRangeMatchesReference) {
  Fixture f(1);
  for (int64_t last : {0, 1, 3, 4, 17, 36}) check(f, 0, last, 0.0f);
}

TEST(Attention, SlidingWindowRangeMatchesReference) {
  Fixture f(2);
  const int64_t window = 8;
  for (int64_t pos : {5, 8, 9, 20, 36}) check(f, std::max<int64_t>(0, pos - window + 1), pos, 0.0f);
}

TEST(Attention, SoftcapMatchesReference) {
  Fixture f(3);
  check(f, 0, 36, 5.0f);
}

TEST(Ops, RopeNormAndNeoxRotateTheRightPairs) {
  // One pair rotated by theta = pos * base^(-2i/n_rot): check against cos/sin directly.
  const int64_t d = 8, pos = 7;
  const float base = 10000.0f;
  std::vector<float> x(d), y(d);
  for (int64_t i = 0; i < d; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  for (auto style : {ops::RopeStyle::kNorm, ops::RopeStyle::kNeox}) {
    y = x;
    ops::rope(y.data(), d, d, pos, base, 1.0f, style, nullptr);
    for (int64_t i = 0; i < d / 2; ++i) {
      const double th = pos * std::pow(static_cast<double>(base), -2.0 * i / d);
      const int64_t a = style == ops::RopeStyle::kNorm ? 2 * i : i;
      const int64_t b = style == ops::RopeStyle::kNorm ? 2 * i + 1 : i + d / 2;
      EXPECT_NEAR(y[a], x[a] * std::cos(th) - x[b] * std::sin(th), 1e-5);
      EXPECT_NEAR(y[b], x[a] * std::sin(th) + x[b] * std::cos(th), 1e-5);
    }
  }
}

TEST(Ops, RmsNormAndSoftmax) {
  std::vector<float> x = {1, -2, 3, -4}, w = {1, 2, 3, 4}, y(4);
  ops::rms_norm(x.data(), w.data(), y.data(), 4, 0.0f);
  const double rms = std::sqrt((1 + 4 + 9 + 16) / 4.0);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[static_cast<size_t>(i)], x[static_cast<size_t>(i)] / rms * w[static_cast<size_t>(i)], 1e-6);
  std::vector<float> s = {1000.0f, 1000.0f, -1e30f};
  const float lse = ops::softmax(s.data(), 3);
  EXPECT_NEAR(s[0], 0.5f, 1e-6);
  EXPECT_NEAR(s[2], 0.0f, 1e-6);
  EXPECT_NEAR(lse, 1000.0f + std::log(2.0f), 1e-3);
}

}  // namespace
}  // namespace flashlm
