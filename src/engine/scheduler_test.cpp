// Continuous batching against the single-sequence path: whatever the interleaving
// (chunked prefill beside decodes, admission order, preemption for KV blocks), every
// request's greedy tokens must equal the same prompt run alone on its own engine (run_alone).
// Plus the request lifecycle: cancel, timeouts, queue limits, stop(drain), validation.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/generate.h"
#include "engine/scheduler_test_util.h"

namespace flashlm {
namespace {

using namespace std::chrono_literals;
using namespace flashlm::test;

// Prompts of very different lengths (1 to ~35 tokens for SmolLM2, up to ~120 with the
// byte-level synthetic vocabularies) so that prefill is chunked
// across steps and requests reach decoding at different times.
std::vector<std::vector<int32_t>> test_prompts(const tok::Tokenizer& tok) {
  const char* texts[] = {
      "Hello",
      "The capital of France is",
      "Once upon a time, in a small village at the edge of a great forest, there lived an old "
      "woodcutter and his three daughters. Every morning the youngest",
      "def fibonacci(n):\n    ",
      "List three colours:",
      "Water boils at a temperature of one hundred degrees Celsius at sea level, but on a high "
      "mountain the air pressure is lower, so",
      "1, 2, 3, 4,",
      "Question: why is the sky blue?\nAnswer:",
  };
  std::vector<std::vector<int32_t>> out;
  for (const char* t : texts) out.push_back(tok.encode(t, true, false));
  return out;
}

// --- the key property: batched == one at a time -------------------------------------

void check_batched_equals_sequential(const Loaded& l, int64_t max_tokens, int step_tokens, int64_t kv_blocks,
                                     bool expect_preemption) {
  const int64_t n_ctx = 128;
  const auto prompts = test_prompts(*l.tok);
  std::vector<RequestOptions> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    RequestOptions r = greedy(prompts[i], max_tokens);
    r.ignore_eos = i % 2 == 0;  // half may stop at EOS, as run_alone would
    if (i == 3) r.sampling.repeat_penalty = 1.3f;  // penalties see the prompt history
    reqs.push_back(r);
  }

  SchedulerOptions o;
  o.n_parallel = 4;
  o.n_ctx = n_ctx;
  o.step_tokens = step_tokens;
  o.kv_blocks = kv_blocks;
  // Everything the handlers touch is declared before the scheduler, so it outlives the
  // scheduler's last event even when an assertion returns early.
  std::vector<std::unique_ptr<Collector>> cols;
  std::atomic<int> max_running{0};
  std::atomic<bool> mixed_step{false};  // a step held decode tokens and a prefill chunk
  auto sched = make(l, o);
  ASSERT_NE(sched, nullptr);
  for (size_t i = 0; i < reqs.size(); ++i) {
    cols.push_back(std::make_unique<Collector>());
    cols.back()->extra = [&, s = sched.get()](const StreamEvent& ev) {
      const SchedulerStats st = s->stats();
      max_running = std::max<int>(max_running, static_cast<int>(st.running));
      if (ev.n_generated >= 2 && st.last_step_tokens > st.running) mixed_step = true;
    };
    const SubmitResult r = sched->submit(reqs[i], cols.back()->fn());
    ASSERT_EQ(r.error, SubmitError::kNone) << r.message;
  }
  for (auto& c : cols) ASSERT_TRUE(c->wait());
  const SchedulerStats st = sched->stats();
  sched->stop(true);

  int64_t total_prompt = 0, total_gen = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Reference ref = run_alone(l, n_ctx, prompts[i], reqs[i]);
    Collector& c = *cols[i];
    EXPECT_EQ(c.ids(), ref.tokens) << "prompt " << i;
    EXPECT_EQ(c.text, ref.text) << "prompt " << i;
    EXPECT_EQ(finish_reason_name(c.finish), ref.finish) << "prompt " << i;
    EXPECT_EQ(c.n_finish, 1);
    EXPECT_EQ(c.last.n_prompt, static_cast<int64_t>(prompts[i].size()));
    EXPECT_EQ(c.last.n_generated, static_cast<int64_t>(ref.tokens.size()));
    total_prompt += static_cast<int64_t>(prompts[i].size());
    total_gen += static_cast<int64_t>(ref.tokens.size());
  }
  EXPECT_GE(max_running.load(), 2) << "requests never ran together";
  EXPECT_TRUE(mixed_step.load()) << "no step mixed decode tokens with a prefill chunk";
  EXPECT_EQ(st.generated_tokens, total_gen);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.waiting, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);
  if (expect_preemption) {
    EXPECT_GT(st.preempted, 0) << "the small pool never forced a preemption";
    EXPECT_GT(st.prompt_tokens, total_prompt);  // preempted sequences recomputed their KV
  } else {
    EXPECT_EQ(st.preempted, 0);
    EXPECT_EQ(st.prompt_tokens, total_prompt);
  }
  std::printf("[batched] %lld steps, %lld prompt + %lld generated tokens, %lld preempted, max running %d\n",
              static_cast<long long>(st.steps), static_cast<long long>(st.prompt_tokens),
              static_cast<long long>(st.generated_tokens), static_cast<long long>(st.preempted), max_running.load());
}

TEST(Scheduler, BatchedGreedyEqualsSequentialSmolLM2) {
  LOAD_OR_SKIP(l, kSmol);
  check_batched_equals_sequential(*l, 10, 16, 0, false);
}
TEST(Scheduler, BatchedGreedyEqualsSequentialTinyLlamaQ8) {
  LOAD_OR_SKIP(l, kTinyLlama);
  check_batched_equals_sequential(*l, 24, 12, 0, false);
}
TEST(Scheduler, BatchedGreedyEqualsSequentialTinyGemma3SlidingWindow) {
  LOAD_OR_SKIP(l, kTinyGemma);
  check_batched_equals_sequential(*l, 24, 12, 0, false);
}
TEST(Scheduler, BatchedGreedyEqualsSequentialTinyQwen3) {
  LOAD_OR_SKIP(l, kTinyQwen3);
  check_batched_equals_sequential(*l, 24, 12, 0, false);
}

// A pool of 5 blocks (160 tokens) for 4 sequences of up to 128: sequences must be
// preempted and recomputed, and every output is still exactly the sequential one.
TEST(Scheduler, SmallKvPoolPreemptsAndStillMatchesTinyLlamaQ8) {
  LOAD_OR_SKIP(l, kTinyLlama);
  check_batched_equals_sequential(*l, 60, 12, 5, true);
}
TEST(Scheduler, SmallKvPoolPreemptsAndStillMatchesTinyGemma3) {
  LOAD_OR_SKIP(l, kTinyGemma);
  check_batched_equals_sequential(*l, 60, 12, 5, true);
}

// --- lifecycle ------------------------------------------------------------------------

TEST(Scheduler, CancelMidStreamFreesKvWithinOneStep) {
  LOAD_OR_SKIP(l, kTinyLlama);
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 256;
  RequestOptions r = greedy(test_prompts(*l->tok)[2], -1);
  r.ignore_eos = true;  // would run to the end of the context
  std::atomic<uint64_t> id{0};
  std::atomic<int64_t> cancel_step{-1}, finish_step{-1}, blocks_at_finish{-1}, blocks_before{-1};
  Collector c;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  c.extra = [&](const StreamEvent& ev) {
    // The tiny model can finish the whole stream before submit() returns the id to this
    // thread on a busy machine: hold the stream until the id is known.
    while (id.load() == 0) std::this_thread::yield();
    const SchedulerStats st = sched->stats();
    if (ev.finish != FinishReason::kNone) {
      finish_step = st.steps;
      blocks_at_finish = st.kv_blocks_used;
    } else if (ev.n_generated >= 5 && cancel_step < 0) {
      blocks_before = st.kv_blocks_used;
      cancel_step = st.steps;
      sched->cancel(id);
    }
  };
  const SubmitResult sr = sched->submit(r, c.fn());
  ASSERT_EQ(sr.error, SubmitError::kNone);
  id = sr.id;
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.finish, FinishReason::kCancelled);
  EXPECT_EQ(c.n_finish, 1);
  EXPECT_GE(cancel_step.load(), 0);
  EXPECT_GT(blocks_before.load(), 0);
  EXPECT_LE(finish_step.load(), cancel_step.load() + 1);
  EXPECT_EQ(blocks_at_finish.load(), 0);  // freed before the finish event
  EXPECT_LT(c.last.n_generated, 200);
  EXPECT_EQ(sched->stats().kv_blocks_used, 0);
  sched->cancel(id);      // finished: ignored
  sched->cancel(999999);  // unknown: ignored
}

TEST(Scheduler, CancelWhileWaiting) {
  LOAD_OR_SKIP(l, kTinyLlama);
  SchedulerOptions o;
  o.n_parallel = 1;
  o.n_ctx = 64;
  std::mutex gate_mu;
  bool open = false, entered = false;
  std::condition_variable gate;
  Collector a, b;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  Defer open_gate([&] { open_the_gate(gate_mu, gate, open); });
  a.extra = [&](const StreamEvent&) {  // holds the scheduler thread until the gate opens
    std::unique_lock<std::mutex> lk(gate_mu);
    entered = true;
    gate.notify_all();
    gate.wait(lk, [&] { return open; });
  };
  RequestOptions ra = greedy(test_prompts(*l->tok)[1], 4);
  ra.ignore_eos = true;
  ASSERT_EQ(sched->submit(ra, a.fn()).error, SubmitError::kNone);
  {
    std::unique_lock<std::mutex> lk(gate_mu);
    gate.wait(lk, [&] { return entered; });
  }
  const SubmitResult sb = sched->submit(greedy(test_prompts(*l->tok)[0], 4), b.fn());
  ASSERT_EQ(sb.error, SubmitError::kNone);
  EXPECT_EQ(sched->stats().waiting, 1);
  sched->cancel(sb.id);
  open_the_gate(gate_mu, gate, open);
  ASSERT_TRUE(b.wait());
  ASSERT_TRUE(a.wait());
  EXPECT_EQ(b.finish, FinishReason::kCancelled);
  EXPECT_EQ(b.last.n_generated, 0);
  EXPECT_TRUE(b.tokens.empty());
  EXPECT_EQ(a.finish, FinishReason::kLength);
  EXPECT_EQ(a.tokens.size(), 4u);
}

TEST(Scheduler, QueueFullIsRefusedWithoutSideEffects) {
  LOAD_OR_SKIP(l, kTinyLlama);
  SchedulerOptions o;
  o.n_parallel = 1;
  o.n_ctx = 64;
  o.max_queue = 2;
  std::mutex gate_mu;
  bool open = false, entered = false;
  std::condition_variable gate;
  Collector a, b, c, d, e;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  Defer open_gate([&] { open_the_gate(gate_mu, gate, open); });
  a.extra = [&](const StreamEvent&) {
    std::unique_lock<std::mutex> lk(gate_mu);
    entered = true;
    gate.notify_all();
    gate.wait(lk, [&] { return open; });
  };
  const auto prompt = test_prompts(*l->tok)[1];
  RequestOptions ra = greedy(prompt, 3);
  ra.ignore_eos = true;
  ASSERT_EQ(sched->submit(ra, a.fn()).error, SubmitError::kNone);
  {
    std::unique_lock<std::mutex> lk(gate_mu);
    gate.wait(lk, [&] { return entered; });  // a is running, the loop is held
  }
  ASSERT_EQ(sched->submit(ra, b.fn()).error, SubmitError::kNone);
  ASSERT_EQ(sched->submit(ra, c.fn()).error, SubmitError::kNone);
  const SubmitResult full = sched->submit(ra, d.fn());
  EXPECT_EQ(full.error, SubmitError::kQueueFull);
  EXPECT_NE(full.message.find("queue is full"), std::string::npos) << full.message;
  EXPECT_EQ(sched->stats().waiting, 2);
  open_the_gate(gate_mu, gate, open);
  for (Collector* x : {&a, &b, &c}) {
    ASSERT_TRUE(x->wait());
    EXPECT_EQ(x->finish, FinishReason::kLength);
    EXPECT_EQ(x->tokens.size(), 3u);
  }
  EXPECT_TRUE(d.events.empty());  // the refused request never hears anything
  // Room again once the queue drained.
  EXPECT_EQ(sched->submit(ra, e.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(e.wait());
}

TEST(Scheduler, SubmitValidation) {
  LOAD_OR_SKIP(l, kTinyLlama);
  SchedulerOptions o;
  o.n_ctx = 32;
  Collector c;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  EXPECT_EQ(sched->n_ctx(), 32);
  const int32_t n_vocab = static_cast<int32_t>(l->model->config().n_vocab);

  SubmitResult r = sched->submit(greedy({}, 4), c.fn());
  EXPECT_EQ(r.error, SubmitError::kInvalid);
  EXPECT_NE(r.message.find("empty"), std::string::npos) << r.message;

  r = sched->submit(greedy(std::vector<int32_t>(32, 5), 4), c.fn());
  EXPECT_EQ(r.error, SubmitError::kTooLong);
  EXPECT_NE(r.message.find("32 tokens"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("holds 32"), std::string::npos) << r.message;

  r = sched->submit(greedy({1, n_vocab}, 4), c.fn());
  EXPECT_EQ(r.error, SubmitError::kInvalid);
  r = sched->submit(greedy({1, -1}, 4), c.fn());
  EXPECT_EQ(r.error, SubmitError::kInvalid);

  RequestOptions bad = greedy({1, 2}, 4);
  bad.sampling.top_p = 7.0f;
  r = sched->submit(bad, c.fn());
  EXPECT_EQ(r.error, SubmitError::kInvalid);
  EXPECT_NE(r.message.find("top_p"), std::string::npos) << r.message;

  bad = greedy({1, 2}, 4);
  bad.top_logprobs = 21;
  EXPECT_EQ(sched->submit(bad, c.fn()).error, SubmitError::kInvalid);
  bad = greedy({1, 2}, 4);
  bad.timeout_s = -1.0;
  EXPECT_EQ(sched->submit(bad, c.fn()).error, SubmitError::kInvalid);
  EXPECT_EQ(sched->submit(greedy({1, 2}, 4), nullptr).error, SubmitError::kInvalid);
  EXPECT_TRUE(c.events.empty());

  sched->stop(true);
  r = sched->submit(greedy({1, 2}, 4), c.fn());
  EXPECT_EQ(r.error, SubmitError::kShuttingDown);
  EXPECT_TRUE(c.events.empty());
}

TEST(Scheduler, CreateValidation) {
  LOAD_OR_SKIP(l, kTinyLlama);
  auto bad = [&](SchedulerOptions o, const char* what) {
    auto s = Scheduler::create(*l->model, *l->tok, o);
    ASSERT_FALSE(s.is_ok()) << what;
    EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
  };
  SchedulerOptions o;
  o.n_ctx = 100000;
  bad(o, "training context");
  o = {};
  o.n_parallel = 8;
  o.step_tokens = 4;
  bad(o, "tokens per step");
  o = {};
  o.n_ctx = 128;
  o.kv_blocks = 3;  // a full context needs 4
  bad(o, "cannot hold one full context");
  o = {};
  o.n_parallel = 0;
  bad(o, "parallel");
}

// The prompt fills all but one position: one token fits, the next finds no position
// (kLength), exactly as a request alone ends on a full context.
TEST(Scheduler, ContextFullFinishesWithLength) {
  LOAD_OR_SKIP(l, kTinyLlama);
  SchedulerOptions o;
  o.n_ctx = 32;
  o.step_tokens = 8;
  Collector c;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 29; ++i) prompt.push_back((i * 37 + 11) % 290);
  RequestOptions r = greedy(prompt, -1);
  r.ignore_eos = true;
  ASSERT_EQ(sched->submit(r, c.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(c.wait());
  const Reference ref = run_alone(*l, 32, prompt, r);
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.ids(), ref.tokens);
  EXPECT_EQ(c.tokens.size(), 4u);  // positions 29, 30, 31 fed; the 4th token has none
}

TEST(Scheduler, MaxTokensFinishesWithLength) {
  LOAD_OR_SKIP(l, kTinyLlama);
  Collector c, zero;
  auto sched = make(*l, SchedulerOptions{.n_parallel = 2, .n_ctx = 64});
  ASSERT_NE(sched, nullptr);
  RequestOptions r = greedy(test_prompts(*l->tok)[4], 5);
  r.ignore_eos = true;
  ASSERT_EQ(sched->submit(r, c.fn()).error, SubmitError::kNone);
  r.max_tokens = 0;
  ASSERT_EQ(sched->submit(r, zero.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(c.wait());
  ASSERT_TRUE(zero.wait());
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.tokens.size(), 5u);
  EXPECT_EQ(c.last.n_generated, 5);
  EXPECT_EQ(zero.finish, FinishReason::kLength);
  EXPECT_TRUE(zero.tokens.empty());
  EXPECT_EQ(zero.last.n_generated, 0);
}

TEST(Scheduler, StopStringsEndTheStream) {
  LOAD_OR_SKIP(l, kTinyLlama);
  Collector c;
  auto sched = make(*l, SchedulerOptions{.n_parallel = 2, .n_ctx = 128, .step_tokens = 16});
  ASSERT_NE(sched, nullptr);
  const auto prompt = test_prompts(*l->tok)[7];
  RequestOptions r = greedy(prompt, 40);
  r.ignore_eos = true;
  const Reference full = run_alone(*l, 128, prompt, r);
  // A stop string taken from the middle of the unconstrained output (two printable
  // ASCII bytes, so the cut falls on a character boundary).
  std::string stop;
  for (size_t p = full.text.size() / 3; p + 2 <= full.text.size() && stop.empty(); ++p) {
    auto printable = [](char ch) { return ch > ' ' && ch < 127; };
    if (printable(full.text[p]) && printable(full.text[p + 1])) stop = full.text.substr(p, 2);
  }
  ASSERT_FALSE(stop.empty()) << "no printable pair in: " << full.text;
  const std::string expected = full.text.substr(0, full.text.find(stop));
  r.stop = {"\x01never-appears", stop};
  ASSERT_EQ(sched->submit(r, c.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.finish, FinishReason::kStop);
  EXPECT_EQ(c.text, expected) << "stop string '" << stop << "'";
  EXPECT_LT(c.tokens.size(), full.tokens.size());
  const Reference ref = run_alone(*l, 128, prompt, r);
  EXPECT_EQ(c.text, ref.text);
  EXPECT_EQ(c.ids(), ref.tokens);
}

TEST(Scheduler, TimeoutWhileRunning) {
  LOAD_OR_SKIP(l, kTinyLlama);
  Collector c;
  auto sched = make(*l, SchedulerOptions{.n_parallel = 2, .n_ctx = 256});
  ASSERT_NE(sched, nullptr);
  RequestOptions r = greedy(test_prompts(*l->tok)[0], -1);
  r.ignore_eos = true;
  r.timeout_s = 0.2;
  c.extra = [](const StreamEvent&) { std::this_thread::sleep_for(4ms); };  // ~250 tokens would take 1 s
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(sched->submit(r, c.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(c.wait());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(c.finish, FinishReason::kTimeout);
  EXPECT_GT(c.last.n_generated, 0);
  EXPECT_LT(c.last.n_generated, 200);
  EXPECT_GE(s, 0.2);
  EXPECT_LT(s, 5.0);
  EXPECT_EQ(sched->stats().kv_blocks_used, 0);
}

TEST(Scheduler, TimeoutWhileWaiting) {
  LOAD_OR_SKIP(l, kTinyLlama);
  Collector a, b;
  std::atomic<bool> slept{false};
  auto sched = make(*l, SchedulerOptions{.n_parallel = 1, .n_ctx = 64});
  ASSERT_NE(sched, nullptr);
  a.extra = [&](const StreamEvent&) {
    if (!slept.exchange(true)) std::this_thread::sleep_for(150ms);
  };
  RequestOptions ra = greedy(test_prompts(*l->tok)[1], 3);
  ra.ignore_eos = true;
  ASSERT_EQ(sched->submit(ra, a.fn()).error, SubmitError::kNone);
  while (!slept) std::this_thread::sleep_for(1ms);
  RequestOptions rb = ra;
  rb.timeout_s = 0.02;
  ASSERT_EQ(sched->submit(rb, b.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(b.wait());
  ASSERT_TRUE(a.wait());
  EXPECT_EQ(b.finish, FinishReason::kTimeout);
  EXPECT_EQ(b.last.n_generated, 0);
  EXPECT_EQ(a.finish, FinishReason::kLength);
}

TEST(Scheduler, StopDrainFinishesEverything) {
  LOAD_OR_SKIP(l, kTinyLlama);
  std::vector<std::unique_ptr<Collector>> cols;
  auto sched = make(*l, SchedulerOptions{.n_parallel = 2, .n_ctx = 256, .step_tokens = 8});
  ASSERT_NE(sched, nullptr);
  const auto prompts = test_prompts(*l->tok);
  for (int i = 0; i < 6; ++i) {
    RequestOptions r = greedy(prompts[static_cast<size_t>(i)], 8);
    r.ignore_eos = true;
    cols.push_back(std::make_unique<Collector>());
    ASSERT_EQ(sched->submit(r, cols.back()->fn()).error, SubmitError::kNone);
  }
  sched->stop(true);
  for (auto& c : cols) {
    EXPECT_EQ(c->n_finish, 1);
    EXPECT_EQ(c->finish, FinishReason::kLength);
    EXPECT_EQ(c->tokens.size(), 8u);
  }
  EXPECT_EQ(sched->stats().kv_blocks_used, 0);
  sched->stop(true);  // again: no effect
}

TEST(Scheduler, StopWithoutDrainCancelsEverything) {
  LOAD_OR_SKIP(l, kTinyLlama);
  std::vector<std::unique_ptr<Collector>> cols;
  auto sched = make(*l, SchedulerOptions{.n_parallel = 2, .n_ctx = 256, .step_tokens = 8});
  ASSERT_NE(sched, nullptr);
  const auto prompts = test_prompts(*l->tok);
  for (int i = 0; i < 6; ++i) {
    RequestOptions r = greedy(prompts[static_cast<size_t>(i)], -1);
    r.ignore_eos = true;
    cols.push_back(std::make_unique<Collector>());
    cols.back()->extra = [](const StreamEvent&) { std::this_thread::sleep_for(1ms); };
    ASSERT_EQ(sched->submit(r, cols.back()->fn()).error, SubmitError::kNone);
  }
  ASSERT_TRUE(cols[0]->wait_events(1)) << "no event";
  sched->stop(false);
  for (auto& c : cols) {
    EXPECT_EQ(c->n_finish, 1);
    EXPECT_EQ(c->finish, FinishReason::kCancelled);
  }
  EXPECT_EQ(sched->stats().kv_blocks_used, 0);
}

TEST(Scheduler, DestructorCancelsPendingWork) {
  LOAD_OR_SKIP(l, kTinyLlama);
  std::vector<std::unique_ptr<Collector>> cols;
  {
    auto sched = make(*l, SchedulerOptions{.n_parallel = 1, .n_ctx = 256});
    ASSERT_NE(sched, nullptr);
    for (int i = 0; i < 3; ++i) {
      RequestOptions r = greedy(test_prompts(*l->tok)[0], -1);
      r.ignore_eos = true;
      cols.push_back(std::make_unique<Collector>());
      cols.back()->extra = [](const StreamEvent&) { std::this_thread::sleep_for(1ms); };  // >= 0.25 s each
      ASSERT_EQ(sched->submit(r, cols.back()->fn()).error, SubmitError::kNone);
    }
  }
  for (auto& c : cols) {
    EXPECT_EQ(c->n_finish, 1);
    EXPECT_TRUE(c->finish == FinishReason::kCancelled || c->finish == FinishReason::kLength);
  }
  EXPECT_EQ(cols[2]->finish, FinishReason::kCancelled);  // never admitted before the stop
}

// The same seed gives the same stream, in one batch and alone; another seed differs.
TEST(Scheduler, SeededSamplingIsReproducible) {
  LOAD_OR_SKIP(l, kTinyLlama);
  Collector a, b, c;
  auto sched = make(*l, SchedulerOptions{.n_parallel = 3, .n_ctx = 256, .step_tokens = 16});
  ASSERT_NE(sched, nullptr);
  const auto prompt = test_prompts(*l->tok)[2];
  RequestOptions r;
  r.prompt = prompt;
  r.max_tokens = 40;
  r.ignore_eos = true;
  r.sampling.temperature = 1.0f;
  r.sampling.top_k = 0;
  r.sampling.top_p = 1.0f;
  r.sampling.min_p = 0.0f;
  r.sampling.seed = 1234;
  RequestOptions other = r;
  other.sampling.seed = 99;
  ASSERT_EQ(sched->submit(r, a.fn()).error, SubmitError::kNone);
  ASSERT_EQ(sched->submit(r, b.fn()).error, SubmitError::kNone);
  ASSERT_EQ(sched->submit(other, c.fn()).error, SubmitError::kNone);
  for (Collector* x : {&a, &b, &c}) ASSERT_TRUE(x->wait());
  EXPECT_EQ(a.ids().size(), 40u);
  EXPECT_EQ(a.ids(), b.ids());
  EXPECT_NE(a.ids(), c.ids());
  EXPECT_EQ(a.ids(), run_alone(*l, 256, prompt, r).tokens);
  EXPECT_EQ(c.ids(), run_alone(*l, 256, prompt, other).tokens);
}

TEST(Scheduler, LogprobsAndTimeToFirstToken) {
  LOAD_OR_SKIP(l, kTinyLlama);
  Collector c;
  auto sched = make(*l, SchedulerOptions{.n_parallel = 1, .n_ctx = 64});
  ASSERT_NE(sched, nullptr);
  RequestOptions r = greedy(test_prompts(*l->tok)[1], 6);
  r.ignore_eos = true;
  r.top_logprobs = 3;
  ASSERT_EQ(sched->submit(r, c.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(c.wait());
  ASSERT_EQ(c.tokens.size(), 6u);
  for (const TokenInfo& t : c.tokens) {
    ASSERT_EQ(t.logprobs.top.size(), 3u);
    EXPECT_EQ(t.logprobs.top[0].token, t.token);  // greedy picks the most likely
    EXPECT_FLOAT_EQ(t.logprobs.chosen, t.logprobs.top[0].logprob);
    EXPECT_LE(t.logprobs.chosen, 0.0f);
    EXPECT_GE(t.logprobs.top[0].logprob, t.logprobs.top[1].logprob);
    EXPECT_GE(t.logprobs.top[1].logprob, t.logprobs.top[2].logprob);
  }
  for (const StreamEvent& ev : c.events) {
    if (!ev.tokens.empty()) {
      EXPECT_GE(ev.ttft_ms, 0.0);
    }
  }
  EXPECT_EQ(c.last.n_cached, 0);
  const SchedulerStats st = sched->stats();
  EXPECT_GT(st.steps, 0);
  EXPECT_GT(st.busy_s, 0.0);
  EXPECT_EQ(st.generated_tokens, 6);
}

// Requests arrive from several threads while others finish; each sees exactly one
// finish and the right number of tokens.
TEST(Scheduler, ConcurrentSubmittersAndCancels) {
  LOAD_OR_SKIP(l, kTinyLlama);
  constexpr int kThreads = 4, kEach = 6;
  std::vector<std::unique_ptr<Collector>> cols(kThreads * kEach);
  for (auto& c : cols) c = std::make_unique<Collector>();
  auto sched = make(*l, SchedulerOptions{.n_parallel = 3, .n_ctx = 256, .step_tokens = 8, .max_queue = 64});
  ASSERT_NE(sched, nullptr);
  const auto prompts = test_prompts(*l->tok);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const int k = t * kEach + i;
        RequestOptions r = greedy(prompts[static_cast<size_t>(k) % prompts.size()], 6);
        r.ignore_eos = true;
        const SubmitResult sr = sched->submit(r, cols[static_cast<size_t>(k)]->fn());
        ASSERT_EQ(sr.error, SubmitError::kNone) << sr.message;
        if (i % 3 == 2) sched->cancel(sr.id);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t k = 0; k < cols.size(); ++k) {
    ASSERT_TRUE(cols[k]->wait());
    EXPECT_EQ(cols[k]->n_finish, 1);
    if (cols[k]->finish == FinishReason::kLength) {
      EXPECT_EQ(cols[k]->tokens.size(), 6u);
    } else {
      EXPECT_EQ(cols[k]->finish, FinishReason::kCancelled);
      EXPECT_EQ(k % kEach % 3, 2u);
    }
  }
  sched->stop(true);
  EXPECT_EQ(sched->stats().kv_blocks_used, 0);
}

}  // namespace
}  // namespace flashlm
