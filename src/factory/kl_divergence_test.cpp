// KL divergence against a stored base: exact values on small vocabularies, the
// coarsened bound, the file round trip and corrupt files.
#include "factory/kl_divergence.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <random>

namespace flashlm::factory {
namespace {

std::vector<float> random_logits(size_t n, uint32_t seed, float scale = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<double> softmax(const std::vector<float>& l) {
  double m = -INFINITY, s = 0.0;
  for (float x : l) m = std::max<double>(m, x);
  std::vector<double> p(l.size());
  for (size_t i = 0; i < l.size(); ++i) s += p[i] = std::exp(l[i] - m);
  for (double& x : p) x /= s;
  return p;
}

KlBase base_of(uint32_t n_vocab, uint32_t top_k) {
  KlBase b;
  b.n_vocab = n_vocab;
  b.n_ctx = 8;
  b.top_k = top_k;
  return b;
}

TEST(KlDivergence, AModelAgainstItselfIsExactlyZero) {
  KlBase b = base_of(1000, 32);
  std::vector<std::vector<float>> rows;
  for (uint32_t s = 0; s < 20; ++s) {
    rows.push_back(random_logits(1000, s));
    b.add(rows.back().data(), static_cast<int32_t>(s * 7));
  }
  KlAccumulator acc(b);
  for (size_t p = 0; p < rows.size(); ++p) ASSERT_TRUE(acc.add(p, rows[p].data()));
  const KlSummary s = acc.summary();
  EXPECT_EQ(s.n, 20u);
  EXPECT_EQ(s.kl_mean, 0.0);
  EXPECT_EQ(s.kl_max, 0.0);
  EXPECT_EQ(s.top1_agree, 1.0);
  EXPECT_DOUBLE_EQ(s.ppl, s.ppl_base);
  EXPECT_FALSE(acc.add(20, rows[0].data()));  // past the base's positions
}

TEST(KlDivergence, FullVocabularyGivesTheExactDivergence) {
  const std::vector<float> lp = random_logits(6, 1), lq = random_logits(6, 2);
  KlBase b = base_of(6, 6);
  b.add(lp.data(), 3);
  const std::vector<double> p = softmax(lp), q = softmax(lq);
  double want = 0.0;
  for (size_t i = 0; i < p.size(); ++i) want += p[i] * std::log(p[i] / q[i]);
  EXPECT_NEAR(kl_position(b, 0, lq), want, 1e-6 * std::max(1.0, want));
  // Ranked most likely first, ties to the lower id.
  for (uint32_t j = 1; j < 6; ++j) EXPECT_GE(b.logp[j - 1], b.logp[j]);
  EXPECT_NEAR(std::exp(b.logp_next[0]), p[3], 1e-6);
}

TEST(KlDivergence, TopKIsTheCoarsenedDivergenceAndABound) {
  const std::vector<float> lp = random_logits(50, 3), lq = random_logits(50, 4);
  const std::vector<double> p = softmax(lp), q = softmax(lq);
  double full = 0.0;
  for (size_t i = 0; i < p.size(); ++i) full += p[i] * std::log(p[i] / q[i]);
  KlBase b = base_of(50, 5);
  b.add(lp.data(), 0);
  // The same divergence over {the base's top 5} + {the rest}.
  double want = 0.0, p_rest = 1.0, q_rest = 1.0;
  for (uint32_t j = 0; j < 5; ++j) {
    const auto i = static_cast<size_t>(b.ids[j]);
    want += p[i] * std::log(p[i] / q[i]);
    p_rest -= p[i];
    q_rest -= q[i];
  }
  want += p_rest * std::log(p_rest / q_rest);
  const double got = kl_position(b, 0, lq);
  EXPECT_NEAR(got, want, 1e-5 * std::max(1.0, want));
  EXPECT_LE(got, full + 1e-9);
}

std::string temp_path(const char* tag) {
  return ::testing::TempDir() + "kl_" + tag + "_" + std::to_string(getpid()) + ".bin";
}

TEST(KlDivergence, FileRoundTripsAndCorruptionIsRefused) {
  KlBase b = base_of(300, 16);
  b.tokens = {1, 2, 3, 4, 5, 6, 7, 8};
  for (uint32_t s = 0; s < 5; ++s) b.add(random_logits(300, s + 10).data(), static_cast<int32_t>(s));
  const std::string path = temp_path("rt");
  ASSERT_TRUE(save_kl_base(path, b));
  Result<KlBase> r = load_kl_base(path);
  ASSERT_TRUE(r) << r.message();
  EXPECT_EQ(r->tokens, b.tokens);
  EXPECT_EQ(r->ids, b.ids);
  EXPECT_EQ(r->logp, b.logp);
  EXPECT_EQ(r->next, b.next);
  EXPECT_EQ(r->n_ctx, 8u);

  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto write = [&path](const std::vector<char>& v) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(v.data(), static_cast<std::streamsize>(v.size()));
  };
  const auto refused = [&path](const char* why) {
    const Result<KlBase> x = load_kl_base(path);
    return !x && x.message().find(why) != std::string::npos;
  };
  std::vector<char> v = bytes;
  v[100] ^= 1;
  write(v);
  EXPECT_TRUE(refused("checksum mismatch"));
  write(std::vector<char>(bytes.begin(), bytes.end() - 9));
  EXPECT_TRUE(refused("sizes do not add up"));
  write(std::vector<char>(bytes.begin(), bytes.begin() + 20));
  EXPECT_TRUE(refused("too short"));
  v = bytes;
  v[0] = 'X';
  write(v);
  EXPECT_TRUE(refused("wrong magic"));
  v = bytes;
  v[39] = 0x7f;  // the top byte of n_positions: a huge count
  write(v);
  EXPECT_TRUE(refused("counts larger than the file"));
  std::remove(path.c_str());
  EXPECT_TRUE(refused("cannot read"));
}

// An empty base (no tokens, no positions) encodes and parses back: the empty vectors'
// copies are skipped (a null data() passed to memcpy is undefined; the fuzzer found it).
TEST(KlDivergence, EmptyBaseRoundTrips) {
  const KlBase b = base_of(50, 4);
  const std::vector<uint8_t> bytes = encode_kl_base(b);
  const Result<KlBase> r = parse_kl_base(bytes);
  ASSERT_TRUE(r) << r.message();
  EXPECT_EQ(r->n_positions(), 0u);
  EXPECT_TRUE(r->tokens.empty());
  EXPECT_EQ(encode_kl_base(*r), bytes);
}

}  // namespace
}  // namespace flashlm::factory
