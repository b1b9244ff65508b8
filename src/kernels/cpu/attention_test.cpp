// Paged attention against a direct two-pass softmax in double: the scalar one-token
// reference, and the tiled kernel (every compiled instruction set) on awkward shapes —
// one query, query and key counts off the tile sizes, windows smaller than the chunk,
// GQA groups 1..8 and larger than a tile, head sizes 20..256, softcap, chunks appended
// after existing keys, shuffled block tables with spare blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_tiles.h"
#include "kernels/cpu/ops.h"

namespace flashlm {
namespace {

constexpr double kU = 0x1p-24;  // float unit roundoff

struct Shape {
  int n_head_kv = 2, group = 2, head_dim = 16, block_size = 4;
  int64_t n_past = 0;   // keys already in the cache before the chunk
  int64_t n_q = 1;      // queries in the chunk, at positions n_past ...
  int64_t window = 0;   // 0: none
  float softcap = 0.0f;
  float q_sigma = 1.0f; // larger: peakier softmax, more rescaling
};

std::vector<const AttnTileKernels*> all_kernels() {
  std::vector<const AttnTileKernels*> ks = {&attn_tile_kernels_scalar()};
  if (const AttnTileKernels* a = attn_tile_kernels_avx2()) ks.push_back(a);
  return ks;
}

struct Fixture {
  Shape sh;
  int n_head;
  int64_t kv_dim, n_pos;
  std::vector<float> k, v, q;  // q: [n_q, n_head * head_dim]
  std::vector<int32_t> table;

  Fixture(const Shape& s, uint32_t seed) : sh(s) {
    n_head = sh.n_head_kv * sh.group;
    kv_dim = static_cast<int64_t>(sh.n_head_kv) * sh.head_dim;
    n_pos = sh.n_past + sh.n_q;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t n_blocks = (n_pos + sh.block_size - 1) / sh.block_size + 3;  // spare blocks unused
    k.resize(static_cast<size_t>(n_blocks * sh.block_size * kv_dim));
    v.resize(k.size());
    for (auto& x : k) x = nd(rng);
    for (auto& x : v) x = nd(rng);
    q.resize(static_cast<size_t>(sh.n_q * n_head * sh.head_dim));
    for (auto& x : q) x = sh.q_sigma * nd(rng);
    table.resize(static_cast<size_t>(n_blocks));
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);  // logical block i -> any physical block
  }

  PagedKvView view() const { return {k.data(), v.data(), DType::F32, kv_dim, sh.block_size, table.data()}; }
  AttentionParams params() const {
    return {n_head, sh.n_head_kv, sh.head_dim, 1.0f / std::sqrt(static_cast<float>(sh.head_dim)), sh.softcap};
  }
  int64_t first_key(int64_t pos) const { return sh.window > 0 ? std::max<int64_t>(0, pos - sh.window + 1) : 0; }
  const float* q_row(int64_t t, int h) const { return q.data() + (t * n_head + h) * sh.head_dim; }
  const float* slot(const std::vector<float>& pool, int64_t pos, int kvh) const {
    const int64_t b = table[static_cast<size_t>(pos / sh.block_size)];
    return pool.data() + (b * sh.block_size + pos % sh.block_size) * kv_dim + kvh * sh.head_dim;
  }

  // Direct reference for query t, head h: scores, max, exp, normalise, weighted sum, all
  // in double. Also returns the bound on the float kernels' error (see below).
  std::vector<double> reference(int64_t t, int h, double* tol) const {
    const int64_t pos = sh.n_past + t, first = first_key(pos);
    const int kvh = h / sh.group;
    const double scale = 1.0 / std::sqrt(static_cast<double>(sh.head_dim));
    std::vector<double> s;
    double dot_mag = 0.0;
    for (int64_t p = first; p <= pos; ++p) {
      double d = 0.0, mag = 0.0;
      const float* kp = slot(k, p, kvh);
      for (int i = 0; i < sh.head_dim; ++i) {
        d += static_cast<double>(q_row(t, h)[i]) * kp[i];
        mag += std::fabs(static_cast<double>(q_row(t, h)[i]) * kp[i]);
      }
      d *= scale;
      if (sh.softcap > 0.0f) d = sh.softcap * std::tanh(d / sh.softcap);
      s.push_back(d);
      dot_mag = std::max(dot_mag, mag * scale);
    }
    const double mx = *std::max_element(s.begin(), s.end());
    double sum = 0.0;
    for (double& x : s) sum += (x = std::exp(x - mx));
    std::vector<double> out(static_cast<size_t>(sh.head_dim), 0.0);
    double vmax = 0.0;
    for (int64_t p = first; p <= pos; ++p) {
      const float* vp = slot(v, p, kvh);
      for (int i = 0; i < sh.head_dim; ++i) {
        out[static_cast<size_t>(i)] += s[static_cast<size_t>(p - first)] / sum * vp[i];
        vmax = std::max(vmax, static_cast<double>(std::fabs(vp[i])));
      }
    }
    // Error model (rounding errors as independent, so sqrt(count) growth): each score is
    // off by ~sqrt(head_dim) u times the sum of |q_i k_i| (plus a few u of softcap); a
    // weight exp(s - m) / l then by twice that plus the exp's own few u and the sum's
    // sqrt(n) u; the output, a convex combination of V rows, by that relative error times
    // max |v|, plus its own accumulation's.
    const double n = static_cast<double>(s.size());
    const double score_err = std::sqrt(sh.head_dim + 2.0) * kU * dot_mag + (sh.softcap > 0.0f ? 4 * kU * sh.softcap : 0.0);
    *tol = vmax * (2.0 * score_err + (2.0 * std::sqrt(n) + 8.0) * kU);
    return out;
  }
};

// Runs the tiled kernel over the whole chunk and checks every output value against the
// double reference (error model above) and against the scalar float reference, which
// it must match to 1e-5 of max |v| (two float computations of the same thing).
void check_chunk(const Fixture& f, const AttnTileKernels& kern, int head_begin, int head_end) {
  const int64_t q_dim = static_cast<int64_t>(f.n_head) * f.sh.head_dim;
  const float kSentinel = 12345.0f;
  std::vector<float> out(static_cast<size_t>(f.sh.n_q * q_dim), kSentinel);
  AttentionQueries qs{f.q.data(), q_dim, out.data(), q_dim, f.sh.n_past, f.sh.n_q};
  attention_chunk(qs, f.view(), f.params(), f.sh.window, head_begin, head_end, kern);
  double vmax = 0.0;
  for (float x : f.v) vmax = std::max(vmax, static_cast<double>(std::fabs(x)));
  std::vector<float> ref_f(static_cast<size_t>(q_dim));
  for (int64_t t = 0; t < f.sh.n_q; ++t) {
    const int64_t pos = f.sh.n_past + t;
    attention_paged_ref(f.q_row(t, 0), f.view(), f.params(), f.first_key(pos), pos, 0, f.n_head, ref_f.data());
    for (int h = 0; h < f.n_head; ++h) {
      const float* o = out.data() + t * q_dim + static_cast<int64_t>(h) * f.sh.head_dim;
      if (h < head_begin || h >= head_end) {
        for (int i = 0; i < f.sh.head_dim; ++i) ASSERT_EQ(o[i], kSentinel) << "head " << h << " outside the range was written";
        continue;
      }
      double tol = 0.0;
      const std::vector<double> ref = f.reference(t, h, &tol);
      for (int i = 0; i < f.sh.head_dim; ++i) {
        ASSERT_NEAR(o[i], ref[static_cast<size_t>(i)], tol) << kern.name << " query " << t << " head " << h << " element " << i;
        ASSERT_NEAR(o[i], ref_f[static_cast<size_t>(h * f.sh.head_dim + i)], 1e-5 * vmax)
            << kern.name << " query " << t << " head " << h << " element " << i;
      }
    }
  }
}

std::string describe(const Shape& s) {
  return "kv_heads=" + std::to_string(s.n_head_kv) + " group=" + std::to_string(s.group) +
         " head_dim=" + std::to_string(s.head_dim) + " block=" + std::to_string(s.block_size) +
         " past=" + std::to_string(s.n_past) + " n_q=" + std::to_string(s.n_q) +
         " window=" + std::to_string(s.window) + " softcap=" + std::to_string(s.softcap) +
         " q_sigma=" + std::to_string(s.q_sigma);
}

TEST(AttentionChunk, MatchesReferenceOnAwkwardShapes) {
  std::vector<Shape> shapes;
  // GQA groups 1/2/4/8 x head sizes 64/128/256, a chunk off the tile sizes after
  // existing keys that straddle blocks.
  for (int group : {1, 2, 4, 8}) {
    for (int hd : {64, 128, 256}) shapes.push_back({2, group, hd, 32, 37, 19, 0, 0.0f, 1.0f});
  }
  shapes.push_back({1, 4, 64, 32, 0, 1, 0, 0.0f, 1.0f});      // one query, first position
  shapes.push_back({1, 4, 256, 32, 100, 1, 0, 0.0f, 3.0f});   // decode after a prompt
  shapes.push_back({1, 4, 256, 32, 0, 70, 0, 0.0f, 3.0f});    // prompt, no past, peaky
  shapes.push_back({1, 4, 256, 32, 16, 96, 64, 0.0f, 2.0f});  // prompt after a few keys, window
  shapes.push_back({2, 2, 64, 5, 11, 45, 0, 0.0f, 1.0f});     // blocks of 5 slots
  shapes.push_back({2, 2, 64, 16, 3, 64, 8, 0.0f, 2.0f});     // window far smaller than chunk
  shapes.push_back({1, 8, 128, 32, 50, 33, 40, 0.0f, 1.0f});  // window smaller than past + chunk
  shapes.push_back({1, 4, 64, 32, 20, 9, 1, 0.0f, 1.0f});     // window of one: the query's own key
  shapes.push_back({2, 4, 64, 8, 9, 17, 0, 5.0f, 3.0f});      // softcap in both tanh regimes
  shapes.push_back({1, 1, 128, 32, 0, 40, 16, 50.0f, 6.0f});  // softcap, window, group of one
  shapes.push_back({1, 40, 64, 32, 5, 3, 0, 0.0f, 1.0f});     // group larger than a tile
  shapes.push_back({2, 3, 40, 7, 4, 13, 0, 0.0f, 1.0f});      // head size with an 8-wide tail
  shapes.push_back({1, 2, 20, 4, 2, 6, 3, 2.0f, 1.0f});       // head size off 8 (scalar tails)
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    const Fixture f(s, seed++);
    for (const AttnTileKernels* kern : all_kernels()) {
      SCOPED_TRACE(describe(s) + " kernels=" + kern->name);
      check_chunk(f, *kern, 0, f.n_head);
    }
  }
}

TEST(AttentionChunk, HeadSubrangeOfOneGroupOnly) {
  const Fixture f({2, 4, 64, 32, 10, 12, 0, 0.0f, 1.0f}, 99);
  for (const AttnTileKernels* kern : all_kernels()) {
    SCOPED_TRACE(kern->name);
    check_chunk(f, *kern, 5, 7);  // heads 5 and 6 of KV head 1's group [4, 8)
  }
}

TEST(AttentionChunk, ScalarReferenceMatchesDoubleToo) {
  // The float one-token reference obeys the same bound, so the bound is not loose
  // enough to hide a kernel that is worse than the reference.
  const Fixture f({2, 4, 128, 5, 30, 20, 12, 5.0f, 3.0f}, 7);
  const int64_t q_dim = static_cast<int64_t>(f.n_head) * f.sh.head_dim;
  std::vector<float> out(static_cast<size_t>(q_dim));
  for (int64_t t = 0; t < f.sh.n_q; ++t) {
    const int64_t pos = f.sh.n_past + t;
    attention_paged_ref(f.q_row(t, 0), f.view(), f.params(), f.first_key(pos), pos, 0, f.n_head, out.data());
    for (int h = 0; h < f.n_head; ++h) {
      double tol = 0.0;
      const std::vector<double> ref = f.reference(t, h, &tol);
      for (int i = 0; i < f.sh.head_dim; ++i) {
        EXPECT_NEAR(out[static_cast<size_t>(h * f.sh.head_dim + i)], ref[static_cast<size_t>(i)], tol);
      }
    }
  }
}

TEST(AttentionTiles, ExpWithinTwoUlp) {
  for (const AttnTileKernels* kern : all_kernels()) {
    SCOPED_TRACE(kern->name);
    std::vector<float> x;
    for (float a = -87.0f; a <= 88.0f; a += 0.01713f) x.push_back(a);
    for (float a = -1.0f; a <= 1.0f; a += 1.0f / 1024) x.push_back(a);  // near 0, exact steps
    std::vector<float> y = x;
    kern->exp(y.data(), static_cast<int64_t>(y.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(static_cast<double>(x[i]));
      // Two ulp of the result, plus the input's own half ulp magnified by exp's slope 1.
      const double ulp = std::ldexp(1.0, std::ilogb(static_cast<float>(want)) - 23);
      ASSERT_NEAR(y[i], want, 2.0 * ulp) << "x = " << x[i];
    }
    std::vector<float> edge = {0.0f, -std::numeric_limits<float>::infinity(), -88.0f, -1000.0f, 100.0f};
    kern->exp(edge.data(), static_cast<int64_t>(edge.size()));
    EXPECT_EQ(edge[0], 1.0f);
    EXPECT_EQ(edge[1], 0.0f);
    EXPECT_EQ(edge[2], 0.0f);  // below the flush threshold: exp(-88) = 6e-39 would be subnormal
    EXPECT_EQ(edge[3], 0.0f);
    EXPECT_TRUE(std::isfinite(edge[4]));  // clamped, not inf
  }
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
