// Checks the "no allocation per call in steady state" promise by counting calls to the
// global operator new (replaced for this test binary only; the counting is always on but
// only read around the measured loop).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "sampling/sampler.h"

#include "util/alloc_stats_test_util.h"

namespace flashlm {
namespace {

TEST(SamplerAlloc, SteadyStateAllocatesNothing) {
  const int32_t n_vocab = 262144;
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> logits(n_vocab);
  for (float& x : logits) x = dist(rng);

  struct Case {
    int32_t top_k;
    float temperature, top_p, min_p;
    int32_t last_n;
  };
  for (const Case& c : {Case{40, 0.8f, 0.95f, 0.05f, 64}, Case{0, 1.0f, 0.9f, 0.0f, 64},
                        Case{0, 1.0f, 1.0f, 0.05f, 8}, Case{1000, 1.0f, 1.0f, 0.0f, 16},
                        Case{0, 0.0f, 1.0f, 0.0f, 64}}) {
    flashlm::SamplingParams p;
    p.top_k = c.top_k;
    p.temperature = c.temperature;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    p.repeat_penalty = 1.1f;
    p.frequency_penalty = 0.1f;
    p.repeat_last_n = c.last_n;
    p.seed = 9;
    flashlm::Sampler s(p);
    flashlm::SampleLogprobs lp;
    // Warm-up: the scratch buffers reach their steady capacity (the history ring has its
    // full capacity from the start).
    for (int i = 0; i < 3; ++i) s.accept(s.sample(logits.data(), n_vocab, 5, &lp));

    const long before = flashlm::testing_alloc::n_new.load();
    for (int i = 0; i < 10; ++i) {
      s.accept(s.sample(logits.data(), n_vocab, 5, &lp));
      s.accept(s.sample(logits.data(), n_vocab));
    }
    EXPECT_EQ(flashlm::testing_alloc::n_new.load() - before, 0) << "top_k=" << c.top_k << " temp=" << c.temperature;
  }
}

}  // namespace
}  // namespace flashlm
