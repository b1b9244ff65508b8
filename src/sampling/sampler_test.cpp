#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <tuple>
#include <vector>

// The expected values here come from the formulas (softmax, llama.cpp's penalty rules,
// the definitions of top-k/top-p/min-p), computed independently in double precision.

namespace flashlm {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Every truncation off: a pure temperature sampler.
SamplingParams plain(float temperature, uint64_t seed = 1234) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

std::vector<double> softmax(const std::vector<float>& logits, double temp = 1.0) {
  double max = -std::numeric_limits<double>::infinity();
  for (float x : logits) max = std::max(max, static_cast<double>(x));
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((logits[i] - max) / temp);
  for (double& v : p) v /= sum;
  return p;
}

std::vector<float> log_probs(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)) + 3.0f);  // any shift
  return l;
}

std::vector<int> draw_counts(Sampler& s, const std::vector<float>& logits, int n_draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n_draws; ++i) {
    const int32_t t = s.sample(logits.data(), static_cast<int32_t>(logits.size()));
    EXPECT_GE(t, 0);
    EXPECT_LT(t, static_cast<int32_t>(logits.size()));
    if (t >= 0 && t < static_cast<int32_t>(logits.size())) ++counts[t];
  }
  return counts;
}

// Upper 0.1% points of the chi-square distribution, by degrees of freedom (1..10).
double chi2_critical_999(int df) {
  static const double table[] = {10.83, 13.82, 16.27, 18.47, 20.52,
                                 22.46, 24.32, 26.12, 27.88, 29.59};
  return table[std::clamp(df, 1, 10) - 1];
}

// Pearson's test of the counts against expected probabilities (which need not sum to 1:
// they are renormalised). Tokens with expected probability 0 must never be drawn.
void expect_distribution(const std::vector<int>& counts, std::vector<double> expected) {
  const double total_p = std::accumulate(expected.begin(), expected.end(), 0.0);
  const double n = std::accumulate(counts.begin(), counts.end(), 0.0);
  double chi2 = 0.0;
  int df = -1;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = expected[i] / total_p * n;
    if (e == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++df;
  }
  if (df >= 1) {
    EXPECT_LT(chi2, chi2_critical_999(df)) << "df=" << df;
  }
}

std::vector<float> random_logits(size_t n, uint32_t seed, float scale = 4.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> l(n);
  for (float& x : l) x = dist(rng);
  return l;
}

TEST(SamplingParams, Validate) {
  EXPECT_TRUE(SamplingParams().validate().is_ok());
  SamplingParams p;
  p.temperature = -1.0f;  // greedy, as in llama.cpp
  EXPECT_TRUE(p.validate().is_ok());

  auto rejects = [](auto mutate) {
    SamplingParams q;
    mutate(q);
    Status st = q.validate();
    EXPECT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("sampling"), std::string::npos) << st.message();
  };
  rejects([](SamplingParams& q) { q.temperature = kNaN; });
  rejects([](SamplingParams& q) { q.temperature = kInf; });
  rejects([](SamplingParams& q) { q.top_p = 1.5f; });
  rejects([](SamplingParams& q) { q.top_p = -0.1f; });
  rejects([](SamplingParams& q) { q.top_p = kNaN; });
  rejects([](SamplingParams& q) { q.min_p = 2.0f; });
  rejects([](SamplingParams& q) { q.min_p = kNaN; });
  rejects([](SamplingParams& q) { q.repeat_penalty = 0.0f; });
  rejects([](SamplingParams& q) { q.repeat_penalty = kNaN; });
  rejects([](SamplingParams& q) { q.repeat_last_n = -2; });
  rejects([](SamplingParams& q) { q.frequency_penalty = kNaN; });
  rejects([](SamplingParams& q) { q.presence_penalty = -kInf; });

  SamplingParams bad;
  bad.top_p = 2.0f;
  EXPECT_FALSE(Sampler::create(bad).is_ok());
  EXPECT_TRUE(Sampler::create(SamplingParams()).is_ok());
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  const std::vector<float> logits = random_logits(1000, 1);
  const auto expected = static_cast<int32_t>(
      std::max_element(logits.begin(), logits.end()) - logits.begin());
  for (float temp : {0.0f, -1.0f}) {
    SamplingParams p;  // default truncation settings must not matter for greedy
    p.temperature = temp;
    Sampler s(p);
    EXPECT_EQ(s.sample(logits.data(), 1000), expected);
  }
  const std::vector<float> ties = {1.0f, 5.0f, 2.0f, 5.0f, 5.0f};
  Sampler s(plain(0.0f));
  EXPECT_EQ(s.sample(ties.data(), 5), 1);
}

// logit_bias in every mode: a ban (-100) removes the argmax, a large bias selects a
// token, and a bias on a penalised token adds to its penalised logit.
TEST(Sampler, LogitBiasInEveryMode) {
  const std::vector<float> logits = random_logits(1000, 3);
  const auto top = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  SamplingParams ban = plain(0.0f);
  ban.logit_bias = {{top, -100.0f}};
  EXPECT_NE(Sampler(ban).sample(logits.data(), 1000), top);
  for (float temp : {0.0f, 0.7f, 1.5f}) {
    SamplingParams p = plain(temp);
    p.seed = 11;
    p.logit_bias = {{5, 100.0f}, {top, -100.0f}};
    Sampler s(p);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(logits.data(), 1000), 5) << temp;
    SampleLogprobs lp;
    EXPECT_EQ(s.sample(logits.data(), 1000, 2, &lp), 5);
    EXPECT_EQ(lp.top[0].token, 5);
  }
  const std::vector<float> flat = {0.0f, 1.0f, 0.0f};
  SamplingParams p2 = plain(0.0f);
  p2.presence_penalty = 50.0f;
  p2.logit_bias = {{1, 45.0f}};
  Sampler s2(p2);
  s2.accept(1);
  EXPECT_EQ(s2.sample(flat.data(), 3), 0);  // 1 + 45 - 50 = -4 < 0
  p2.logit_bias = {{1, 55.0f}};
  Sampler s3(p2);
  s3.accept(1);
  EXPECT_EQ(s3.sample(flat.data(), 3), 1);  // 1 + 55 - 50 = 6 > 0
  SamplingParams unsorted;
  unsorted.logit_bias = {{3, 1.0f}, {2, 1.0f}};
  EXPECT_FALSE(unsorted.validate().is_ok());
}

TEST(Sampler, SeededDeterminism) {
  const std::vector<float> logits = random_logits(500, 2, 1.0f);
  SamplingParams p;
  p.seed = 42;
  Sampler a(p), b(p);
  std::vector<int32_t> seq_a, seq_b;
  for (int i = 0; i < 300; ++i) {
    seq_a.push_back(a.sample(logits.data(), 500));
    seq_b.push_back(b.sample(logits.data(), 500));
  }
  EXPECT_EQ(seq_a, seq_b);
  EXPECT_GT(std::set<int32_t>(seq_a.begin(), seq_a.end()).size(), 5u) << "not random at all";

  // reset() replays the same stream.
  a.reset();
  for (int i = 0; i < 300; ++i) ASSERT_EQ(a.sample(logits.data(), 500), seq_a[i]);

  p.seed = 43;
  Sampler c(p);
  std::vector<int32_t> seq_c;
  for (int i = 0; i < 300; ++i) seq_c.push_back(c.sample(logits.data(), 500));
  EXPECT_NE(seq_a, seq_c);

  // The random sentinel resolves to a concrete, reportable seed.
  SamplingParams r;
  r.seed = kSeedRandom;
  Sampler rs(r);
  SamplingParams replay = r;
  replay.seed = rs.seed();
  if (!is_random_seed(replay.seed)) {
    Sampler rr(replay);
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(rs.sample(logits.data(), 500), rr.sample(logits.data(), 500));
    }
  }
}

TEST(Sampler, TemperatureOneMatchesSoftmax) {
  const std::vector<double> probs = {0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.02};
  Sampler s(plain(1.0f));
  expect_distribution(draw_counts(s, log_probs(probs), 20000), probs);
}

TEST(Sampler, TemperatureScalesLogits) {
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 0.25f};
  for (float temp : {0.5f, 2.0f}) {
    Sampler s(plain(temp, 99));
    expect_distribution(draw_counts(s, logits, 20000), softmax(logits, temp));
  }
}

TEST(Sampler, TopK1EqualsGreedy) {
  SamplingParams p = plain(1.5f);
  p.top_k = 1;
  Sampler s(p);
  Sampler greedy(plain(0.0f));
  for (uint32_t seed = 0; seed < 50; ++seed) {
    std::vector<float> logits = random_logits(300, seed, 0.5f);
    logits[seed % 300] = logits[(seed * 7 + 3) % 300] = 10.0f;  // a tie at the top
    EXPECT_EQ(s.sample(logits.data(), 300), greedy.sample(logits.data(), 300));
  }
}

TEST(Sampler, TopKKeepsTheKBest) {
  const std::vector<double> probs = {0.1, 0.3, 0.05, 0.25, 0.2, 0.1};
  SamplingParams p = plain(1.0f);
  p.top_k = 3;  // tokens 1, 3, 4
  Sampler s(p);
  expect_distribution(draw_counts(s, log_probs(probs), 20000), {0, 0.3, 0, 0.25, 0.2, 0});
}

// Token ids by decreasing logit, ties by increasing id (the sampler's documented order).
std::vector<int32_t> ranking(const std::vector<float>& logits) {
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  return order;
}

TEST(Sampler, TopKKeepsExactlyTheKBestWithTiesToLowerIds) {
  // k = 300 takes the heap path, k = 2500 the selection path. Several tokens tie with the
  // k-th best; of those only the lowest ids may be kept. A high temperature spreads the
  // draws over all kept tokens.
  const int32_t n_vocab = 3000;
  for (int32_t k : {300, 2500}) {
    std::vector<float> logits = random_logits(n_vocab, 5);
    const std::vector<int32_t> before = ranking(logits);
    for (int j = 1; j <= 3; ++j) logits[before[k - 1 + 7 * j]] = logits[before[k - 1]];
    const std::vector<int32_t> order = ranking(logits);
    const std::set<int32_t> top(order.begin(), order.begin() + k);

    SamplingParams p = plain(100.0f);
    p.top_k = k;
    Sampler s(p);
    std::set<int32_t> seen;
    for (int i = 0; i < 4000; ++i) {
      const int32_t t = s.sample(logits.data(), n_vocab);
      ASSERT_TRUE(top.count(t)) << "k=" << k << " token " << t << " is not in the top k";
      seen.insert(t);
    }
    EXPECT_GT(seen.size(), static_cast<size_t>(k * 3 / 5)) << "k=" << k;
  }
}

TEST(Sampler, TopPKeepsTheMinimalNucleus) {
  const std::vector<double> probs = {0.15, 0.5, 0.05, 0.3};
  const std::vector<float> logits = log_probs(probs);
  SamplingParams p = plain(1.0f);
  p.top_p = 0.75f;  // 0.5 + 0.3 reaches it: tokens 1, 3
  Sampler s(p);
  expect_distribution(draw_counts(s, logits, 20000), {0, 0.5, 0, 0.3});

  p.top_p = 0.85f;  // needs the 0.15 too
  Sampler s2(p);
  expect_distribution(draw_counts(s2, logits, 20000), {0.15, 0.5, 0, 0.3});

  for (float tiny : {0.0f, 1e-6f}) {
    p.top_p = tiny;  // only the most likely token
    Sampler s3(p);
    expect_distribution(draw_counts(s3, logits, 2000), {0, 1, 0, 0});
  }
}

TEST(Sampler, TopPOnALargeNucleusRanksLazilyButExactly) {
  // Flat logits give nuclei of hundreds of tokens, beyond the first ranked chunk.
  // 1500 tokens take the direct path, 6000 the histogram path.
  for (int32_t n_vocab : {1500, 6000}) {
    const std::vector<float> logits = random_logits(n_vocab, 11, 0.3f);
    const std::vector<double> probs = softmax(logits);
    const std::vector<int32_t> order = ranking(logits);
    const double top_p = static_cast<double>(0.3f);  // exactly what the sampler sees
    size_t n_nucleus = 0;
    double cum = 0.0;
    while (cum < top_p) cum += probs[order[n_nucleus++]];
    ASSERT_GT(n_nucleus, 200u);

    // Bin the nucleus by rank into 10 groups and check the mass of each.
    std::vector<int> bin_of(n_vocab, -1);
    std::vector<double> bin_p(10, 0.0);
    for (size_t r = 0; r < n_nucleus; ++r) {
      bin_of[order[r]] = static_cast<int>(r * 10 / n_nucleus);
      bin_p[bin_of[order[r]]] += probs[order[r]];
    }
    SamplingParams p = plain(1.0f);
    p.top_p = static_cast<float>(top_p);
    Sampler s(p);
    std::vector<int> bin_counts(10, 0);
    std::set<int32_t> seen;
    for (int i = 0; i < 5000; ++i) {
      const int32_t t = s.sample(logits.data(), n_vocab);
      ASSERT_GE(bin_of[t], 0) << "token " << t << " (rank "
                              << std::find(order.begin(), order.end(), t) - order.begin()
                              << ") is outside the nucleus of " << n_nucleus;
      ++bin_counts[bin_of[t]];
      seen.insert(t);
    }
    expect_distribution(bin_counts, bin_p);
    // The last token of the nucleus is reachable too.
    EXPECT_GT(seen.size(), n_nucleus * 3 / 4);
  }
}

TEST(Sampler, MinPRemovesTokensBelowTheThreshold) {
  const std::vector<double> probs = {0.5, 0.2, 0.1, 0.07, 0.06, 0.04, 0.03};
  const std::vector<float> logits = log_probs(probs);
  SamplingParams p = plain(1.0f);
  p.min_p = 0.15f;  // keep p >= 0.075: tokens 0..2
  Sampler s(p);
  expect_distribution(draw_counts(s, logits, 20000), {0.5, 0.2, 0.1, 0, 0, 0, 0});

  // As in llama.cpp, min-p sees the untempered distribution: a high temperature flattens
  // what is drawn but does not let token 3 back in.
  p.temperature = 3.0f;
  Sampler hot(p);
  std::vector<double> flat = softmax({logits[0], logits[1], logits[2]}, 3.0);
  flat.resize(7, 0.0);
  expect_distribution(draw_counts(hot, logits, 20000), flat);
}

TEST(Sampler, ChainOrderTopKThenTopPThenMinP) {
  // top-k=2 keeps tokens 1 and 3 and renormalises them to {0.6, 0.4}, so top-p 0.55 keeps
  // token 1 alone. Run the other way round, top-p over the full distribution would keep
  // {1, 3, 0} and top-k would then leave {1, 3}.
  const std::vector<double> probs = {0.1, 0.3, 0.1, 0.2, 0.1, 0.1, 0.1};
  SamplingParams p = plain(1.0f);
  p.top_k = 2;
  p.top_p = 0.55f;
  Sampler a(p);
  expect_distribution(draw_counts(a, log_probs(probs), 2000), {0, 1, 0, 0, 0, 0, 0});
  p.top_p = 0.65f;
  Sampler b(p);
  expect_distribution(draw_counts(b, log_probs(probs), 20000), {0, 0.3, 0, 0.2, 0, 0, 0});
  // min-p 0.7 after that: 0.2 < 0.7 * 0.3, so token 3 goes too.
  p.min_p = 0.7f;
  Sampler c(p);
  expect_distribution(draw_counts(c, log_probs(probs), 2000), {0, 1, 0, 0, 0, 0, 0});
}

// Penalised logits recovered through the log-probabilities, which differ from them only by
// a constant (with temperature 1): logprob[i] - logprob[j] == pen[i] - pen[j].
std::vector<double> observed_logits(Sampler& s, const std::vector<float>& logits) {
  SampleLogprobs lp;
  const auto n = static_cast<int32_t>(logits.size());
  s.sample(logits.data(), n, n, &lp);
  std::vector<double> out(logits.size(), 0.0);
  EXPECT_EQ(lp.top.size(), logits.size());
  for (const TokenLogprob& t : lp.top) out[t.token] = t.logprob;
  return out;
}

void expect_same_up_to_constant(const std::vector<double>& got, const std::vector<double>& want) {
  // Anchor on the last token, which the tests leave unpenalised.
  const double shift = got.back() - want.back();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i] - shift, want[i], 1e-5) << i;
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegative) {
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -0.5f, 0.0f, 1.0f};
  SamplingParams p = plain(0.0f);
  p.repeat_penalty = 1.3f;
  Sampler s(p);
  for (int32_t t : {0, 1, 1, 5}) s.accept(t);  // count does not matter for this penalty
  std::vector<double> want(logits.begin(), logits.end());
  want[0] = 2.0 / 1.3;
  want[1] = -1.0 * 1.3;
  want[5] = 0.0;  // zero counts as non-positive: 0 * 1.3
  expect_same_up_to_constant(observed_logits(s, logits), want);

  // The same effect seen through greedy picks: 2.0 / 1.5 < 1.5 but 2.0 / 1.25 > 1.5.
  const std::vector<float> pos = {2.0f, 1.5f};
  const std::vector<float> neg = {-1.0f, -1.4f};
  for (auto [penalty, pick_pos, pick_neg] :
       {std::tuple{1.5f, 1, 1}, std::tuple{1.25f, 0, 0}}) {
    SamplingParams q = plain(0.0f);
    q.repeat_penalty = penalty;  // -1.0 * 1.5 = -1.5 < -1.4; -1.0 * 1.25 = -1.25 > -1.4
    Sampler g(q);
    g.accept(0);
    EXPECT_EQ(g.sample(pos.data(), 2), pick_pos) << penalty;
    EXPECT_EQ(g.sample(neg.data(), 2), pick_neg) << penalty;
  }
}

TEST(Sampler, FrequencyAndPresencePenalties) {
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
  SamplingParams p = plain(0.0f);
  p.repeat_penalty = 1.2f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  Sampler s(p);
  for (int32_t t : {3, 3, 3, 1, 0, 3}) s.accept(t);
  std::vector<double> want(logits.begin(), logits.end());
  want[3] = 3.0 / 1.2 - (4 * 0.5 + 0.25);
  want[1] = -1.0 * 1.2 - (1 * 0.5 + 0.25);
  want[0] = 2.0 / 1.2 - (1 * 0.5 + 0.25);
  expect_same_up_to_constant(observed_logits(s, logits), want);
}

TEST(Sampler, PenaltyWindow) {
  const std::vector<float> logits = {2.0f, 2.0f, 2.0f, 2.0f};
  SamplingParams p = plain(0.0f);
  p.frequency_penalty = 1.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  for (int32_t t : {0, 0, 1, 2, 2}) s.accept(t);  // window: {2, 2}
  expect_same_up_to_constant(observed_logits(s, logits), {2.0, 2.0, 0.0, 2.0});

  p.repeat_last_n = -1;  // whole history
  Sampler all(p);
  for (int32_t t : {0, 0, 1, 2, 2}) all.accept(t);
  expect_same_up_to_constant(observed_logits(all, logits), {0.0, 1.0, 0.0, 2.0});

  p.repeat_last_n = 0;  // off
  Sampler off(p);
  for (int32_t t : {0, 0, 1, 2, 2}) off.accept(t);
  expect_same_up_to_constant(observed_logits(off, logits), {2.0, 2.0, 2.0, 2.0});

  // reset() forgets the history.
  s.reset();
  expect_same_up_to_constant(observed_logits(s, logits), {2.0, 2.0, 2.0, 2.0});
}

TEST(Sampler, PenaltiesThatRaiseLogitsAreSeenAcrossTheVocabulary) {
  // The vocabulary scan skips blocks of tokens by their raw maximum; penalties can raise a
  // logit (negative presence penalty, repeat_penalty < 1), and those must still win.
  const int32_t n_vocab = 1000;
  std::vector<float> logits(n_vocab, 0.0f);
  logits[500] = 1.0f;
  logits[700] = 0.8f;
  for (int32_t top_k : {0, 1, 40, 3000}) {
    SamplingParams p = plain(top_k == 0 ? 0.0f : 1e-3f);  // greedy, or top-k at T ~ 0
    p.top_k = top_k;
    p.repeat_penalty = 0.5f;  // 0.8 / 0.5 = 1.6 beats 1.0
    Sampler a(p);
    a.accept(700);
    EXPECT_EQ(a.sample(logits.data(), n_vocab), 700) << "top_k=" << top_k;

    p.repeat_penalty = 1.0f;
    p.presence_penalty = -5.0f;  // 0 - (-5) = 5
    Sampler b(p);
    b.accept(900);
    EXPECT_EQ(b.sample(logits.data(), n_vocab), 900) << "top_k=" << top_k;
  }
  // NaN everywhere but one token far into the vocabulary.
  std::vector<float> nan(n_vocab, kNaN);
  nan[777] = -50.0f;
  for (int32_t top_k : {0, 1, 40}) {
    SamplingParams p = plain(top_k == 0 ? 0.0f : 1.0f);
    p.top_k = top_k;
    Sampler s(p);
    EXPECT_EQ(s.sample(nan.data(), n_vocab), 777) << "top_k=" << top_k;
  }
}

TEST(Sampler, LogprobsAreLogSoftmaxAfterTemperature) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 0.5f, 2.5f};
  SamplingParams p = plain(2.0f);
  Sampler s(p);
  SampleLogprobs lp;
  const int32_t t = s.sample(logits.data(), 5, 3, &lp);
  const std::vector<double> probs = softmax(logits, 2.0);
  EXPECT_NEAR(lp.chosen, std::log(probs[t]), 1e-5);
  ASSERT_EQ(lp.top.size(), 3u);
  const int32_t want_ids[] = {1, 4, 0};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(lp.top[i].token, want_ids[i]);
    EXPECT_NEAR(lp.top[i].logprob, std::log(probs[want_ids[i]]), 1e-5);
  }
  // More alternatives than tokens: clamped; reusing lp keeps working.
  s.sample(logits.data(), 5, 100, &lp);
  EXPECT_EQ(lp.top.size(), 5u);
  s.sample(logits.data(), 5, 0, &lp);
  EXPECT_TRUE(lp.top.empty());
}

TEST(Sampler, EdgeCasesDoNotCrash) {
  std::vector<SamplingParams> configs = {plain(0.0f), plain(1.0f), SamplingParams()};
  SamplingParams all_on;
  all_on.top_k = 5;
  all_on.top_p = 0.5f;
  all_on.min_p = 0.2f;
  all_on.repeat_penalty = 1.5f;
  all_on.frequency_penalty = 0.3f;
  all_on.presence_penalty = 0.3f;
  configs.push_back(all_on);
  SamplingParams big_k = plain(1.0f);
  big_k.top_k = 1000000;  // more than the vocabulary
  configs.push_back(big_k);
  SamplingParams tiny_t = plain(1e-30f);
  configs.push_back(tiny_t);

  for (size_t c = 0; c < configs.size(); ++c) {
    configs[c].seed = 5;
    Sampler s(configs[c]);
    for (int32_t t : {-5, 0, 3, 1 << 30}) s.accept(t);  // foreign ids are ignored
    SCOPED_TRACE(c);

    const float one = 0.3f;
    EXPECT_EQ(s.sample(&one, 1), 0);

    std::vector<float> lone(50, -kInf);
    lone[17] = -3.0f;
    for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(lone.data(), 50), 17);

    std::vector<float> nan(50, kNaN);
    nan[33] = 1.0f;
    for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(nan.data(), 50), 33);

    std::vector<float> mixed = random_logits(50, 3);
    for (size_t i = 0; i < mixed.size(); i += 2) mixed[i] = kNaN;
    for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(mixed.data(), 50) % 2, 1);

    std::vector<float> pos_inf = random_logits(50, 4);
    pos_inf[8] = kInf;
    for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(pos_inf.data(), 50), 8);

    const std::vector<float> dead(50, -kInf);
    EXPECT_EQ(s.sample(dead.data(), 50), 0);
    const std::vector<float> all_nan(50, kNaN);
    EXPECT_EQ(s.sample(all_nan.data(), 50), 0);

    SampleLogprobs lp;
    EXPECT_EQ(s.sample(lone.data(), 50, 2, &lp), 17);
    EXPECT_FLOAT_EQ(lp.chosen, 0.0f);
    EXPECT_EQ(s.sample(nullptr, 10), -1);
    EXPECT_EQ(s.sample(lone.data(), 0), -1);
  }

  // Unvalidated garbage is neutralised rather than trusted.
  SamplingParams junk;
  junk.temperature = kNaN;
  junk.top_p = kNaN;
  junk.min_p = 7.0f;
  junk.repeat_penalty = -1.0f;
  junk.repeat_last_n = -9;
  Sampler j(junk);
  j.accept(2);
  const std::vector<float> l = {0.0f, 1.0f, 4.0f};
  EXPECT_EQ(j.sample(l.data(), 3), 2);
}

TEST(Sampler, LargeVocabularySmoke) {
  // Gemma-sized vocabulary through every path; timings are printed, not asserted.
  const int32_t n_vocab = 262144;
  const std::vector<float> logits = random_logits(n_vocab, 21, 3.0f);
  const auto best = static_cast<int32_t>(
      std::max_element(logits.begin(), logits.end()) - logits.begin());
  struct Case {
    const char* name;
    int32_t top_k;
    float top_p, min_p;
  };
  for (const Case& c : {Case{"default k40", 40, 0.95f, 0.05f}, Case{"top_p only", 0, 0.9f, 0.0f},
                        Case{"min_p only", 0, 1.0f, 0.05f}, Case{"k=1000", 1000, 1.0f, 0.0f},
                        Case{"no truncation", 0, 1.0f, 0.0f}}) {
    SamplingParams p = plain(0.8f, 77);
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    p.repeat_penalty = 1.1f;
    Sampler s(p);
    for (int32_t t = 0; t < 64; ++t) s.accept(t * 4099 % n_vocab);
    const auto t0 = std::chrono::steady_clock::now();
    const int n_iter = 20;
    for (int i = 0; i < n_iter; ++i) {
      const int32_t t = s.sample(logits.data(), n_vocab);
      ASSERT_GE(t, 0);
      ASSERT_LT(t, n_vocab);
    }
    const double us = std::chrono::duration<double, std::micro>(
                          std::chrono::steady_clock::now() - t0).count() / n_iter;
    std::printf("  [%s] %.0f us/sample\n", c.name, us);
  }
  Sampler g(plain(0.0f));
  EXPECT_EQ(g.sample(logits.data(), n_vocab), best);
}

}  // namespace
}  // namespace flashlm
