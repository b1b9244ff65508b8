// Prompt scoring (RequestOptions::prompt_logprobs, the server's echo): every prompt token
// after the first gets the log-probability the model gives it, and those numbers do not
// depend on how the prompt was computed: equal to the logprobs of the same tokens sampled
// greedily, in chunks across steps, beside other sequences, after a preemption, and when
// the prefix cache holds the prompt (which a scoring request must not reuse).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "engine/scheduler.h"
#include "engine/scheduler_test_util.h"

namespace flashlm {
namespace {

using namespace flashlm::test;

RequestOptions scoring(std::vector<int32_t> prompt, int top, int64_t max_tokens = 0) {
  RequestOptions r = greedy(std::move(prompt), max_tokens);
  r.prompt_logprobs = top;
  return r;
}

// Scores a prompt on `sched` and returns the finished request's events.
std::unique_ptr<Collector> score(Scheduler& sched, const RequestOptions& r) {
  auto c = std::make_unique<Collector>();
  const SubmitResult s = sched.submit(r, c->fn());
  EXPECT_EQ(s.error, SubmitError::kNone) << s.message;
  if (s.error == SubmitError::kNone) {
    EXPECT_TRUE(c->wait());
  }
  return c;
}

std::vector<TokenInfo> prompt_entries(Collector& c) {
  std::vector<TokenInfo> out;
  for (const StreamEvent& ev : c.events) out.insert(out.end(), ev.prompt_tokens.begin(), ev.prompt_tokens.end());
  return out;
}

void expect_same(const std::vector<TokenInfo>& a, const std::vector<TokenInfo>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].token, b[i].token) << what << " entry " << i;
    EXPECT_EQ(a[i].logprobs.chosen, b[i].logprobs.chosen) << what << " entry " << i;
    ASSERT_EQ(a[i].logprobs.top.size(), b[i].logprobs.top.size()) << what << " entry " << i;
    for (size_t k = 0; k < a[i].logprobs.top.size(); ++k) {
      EXPECT_EQ(a[i].logprobs.top[k].token, b[i].logprobs.top[k].token) << what << " entry " << i;
      EXPECT_EQ(a[i].logprobs.top[k].logprob, b[i].logprobs.top[k].logprob) << what << " entry " << i;
    }
  }
}

std::vector<int32_t> long_prompt(const tok::Tokenizer& tok) {
  return tok.encode(
      "Once upon a time, in a small village at the edge of a great forest, there lived an old woodcutter and his "
      "three daughters. Every morning the youngest walked to the river for water.",
      true, false);
}

// The scored continuation of a greedy generation equals the generation's own logprobs,
// and max_tokens 0 scores without generating.
TEST(PromptLogprobs, EqualTheLogprobsOfTheSameTokensSampledGreedily) {
  LOAD_OR_SKIP(l, kTinyLlama);
  const std::vector<int32_t> prompt = l->tok->encode("The capital of France is", true, false);
  auto sched = make(*l, SchedulerOptions{.n_parallel = 2, .n_ctx = 128});
  ASSERT_NE(sched, nullptr);
  RequestOptions gen = greedy(prompt, 6);
  gen.ignore_eos = true;
  gen.top_logprobs = 3;
  auto g = score(*sched, gen);
  ASSERT_EQ(g->tokens.size(), 6u);

  std::vector<int32_t> whole = prompt;
  for (const TokenInfo& t : g->tokens) whole.push_back(t.token);
  auto s = score(*sched, scoring(whole, 3));
  EXPECT_EQ(s->finish, FinishReason::kLength);
  EXPECT_EQ(s->last.n_generated, 0);
  EXPECT_TRUE(s->tokens.empty());
  EXPECT_EQ(s->last.n_cached, 0);  // the cache holds most of it; scoring reuses nothing
  const std::vector<TokenInfo> entries = prompt_entries(*s);
  ASSERT_EQ(entries.size(), whole.size() - 1);
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].token, whole[i + 1]);
    EXPECT_LE(entries[i].logprobs.chosen, 0.0f);
    ASSERT_EQ(entries[i].logprobs.top.size(), 3u);
  }
  const std::vector<TokenInfo> tail(entries.end() - 6, entries.end());
  expect_same(tail, g->tokens, "scored vs sampled");

  // With generation too: the prompt's entries come once, on the first event.
  auto both = score(*sched, scoring(prompt, 0, 2));
  EXPECT_EQ(both->ids().size(), 2u);
  EXPECT_EQ(prompt_entries(*both).size(), prompt.size() - 1);
  EXPECT_EQ(both->events.front().prompt_tokens.size(), prompt.size() - 1);
}

// Chunked prefill over many steps, four scoring requests beside each other in a pool so
// small that sequences are preempted mid-prompt, and a warm prefix cache: the same
// numbers as the prompt scored alone in one step.
TEST(PromptLogprobs, ChunksPreemptionAndCacheDoNotChangeTheScores) {
  LOAD_OR_SKIP(l, kTinyLlama);
  const std::vector<int32_t> base = long_prompt(*l->tok);
  ASSERT_GT(base.size(), 64u);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> p = base;
    p.resize(base.size() - static_cast<size_t>(i) * 3);
    p[1] = base[static_cast<size_t>(2 + i)];  // no two share a block: no deduplication of blocks
    prompts.push_back(p);
  }
  std::vector<std::vector<TokenInfo>> alone;
  {
    auto sched = make(*l, SchedulerOptions{.n_parallel = 1, .n_ctx = 256});
    ASSERT_NE(sched, nullptr);
    for (const auto& p : prompts) alone.push_back(prompt_entries(*score(*sched, scoring(p, 2, 4))));
    // Cached now: scoring again must give the same (and still reuse nothing).
    auto again = score(*sched, scoring(prompts[0], 2, 4));
    EXPECT_EQ(again->last.n_cached, 0);
    expect_same(prompt_entries(*again), alone[0], "after a cache fill");
    // An ordinary request does hit what the scoring one published.
    auto plain = score(*sched, greedy(prompts[0], 1));
    EXPECT_GT(plain->last.n_cached, 0);
  }
  SchedulerOptions o{.n_parallel = 4, .n_ctx = 128, .kv_blocks = 5, .step_tokens = 12};
  std::vector<std::unique_ptr<Collector>> cols;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  for (const auto& p : prompts) {
    cols.push_back(std::make_unique<Collector>());
    ASSERT_EQ(sched->submit(scoring(p, 2, 4), cols.back()->fn()).error, SubmitError::kNone);
  }
  for (auto& c : cols) ASSERT_TRUE(c->wait());
  const SchedulerStats st = sched->stats();
  sched->stop(true);
  EXPECT_GT(st.preempted, 0) << "the small pool never forced a preemption";
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(cols[i]->n_finish, 1);
    expect_same(prompt_entries(*cols[i]), alone[i], "batched with preemption");
  }
}

TEST(PromptLogprobs, Validation) {
  LOAD_OR_SKIP(l, kTinyLlama);
  auto sched = make(*l, SchedulerOptions{.n_parallel = 1, .n_ctx = 64});
  ASSERT_NE(sched, nullptr);
  Collector c;
  const SubmitResult r = sched->submit(scoring({1, 2, 3}, 21), c.fn());
  EXPECT_EQ(r.error, SubmitError::kInvalid);
  EXPECT_NE(r.message.find("prompt_logprobs"), std::string::npos);
  // A one-token prompt has nothing to score.
  auto one = score(*sched, scoring({1}, 1));
  EXPECT_EQ(one->finish, FinishReason::kLength);
  EXPECT_TRUE(prompt_entries(*one).empty());
}

}  // namespace
}  // namespace flashlm
