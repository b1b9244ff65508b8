// Prefix caching end to end: a request that reuses cached KV blocks produces exactly
// what it produces without them. Checked at two levels:
//  - the model: logits of a sequence that reused another's blocks equal, bit for bit,
//    those of a fresh cache fed the same tokens in the same chunks (batch-invariant
//    matmuls make each token's result independent of the batch);
//  - the Scheduler: greedy tokens with cache hits (later and concurrent requests, whole
//    prompt cached, prompts longer than a sliding window, eviction and preemption under
//    a small pool, warm/pin) equal the same prompt run alone (run_alone).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>

#include "engine/block_manager.h"
#include "engine/runner.h"
#include "engine/scheduler_test_util.h"

namespace flashlm {
namespace {

using namespace flashlm::test;

const char* const kGemma270m = "models/gemma-3-270m-q4_k_m.gguf";

// A model runner (batch-invariant, f32 KV) and the block manager over its cache: the
// scheduler's two parts below it.
struct Engine {
  std::unique_ptr<Runner> runner;
  std::unique_ptr<BlockManager> blocks;
  Engine(const Model& m, int64_t n_ctx, int n_seqs, int64_t chunk) {
    auto r = Runner::create(m, {.n_threads = test_threads(), .n_ctx = n_ctx, .n_batch = static_cast<int>(chunk),
                                .n_seqs = n_seqs, .batch_invariant = true, .kv_type = DType::F32});
    EXPECT_TRUE(r.is_ok()) << r.message();
    if (!r) return;
    runner = std::move(r.value());
    blocks = std::make_unique<BlockManager>(runner->kv());
  }
};

// Feeds tokens[from, to) of a sequence in chunks of `chunk` as the scheduler does;
// returns the last token's logits.
std::vector<float> feed(Engine& en, int seq, const std::vector<int32_t>& tokens, int64_t from, int64_t to, int64_t chunk) {
  std::vector<float> logits;
  Batch b;
  for (int64_t p = from; p < to; p += chunk) {
    const int64_t e = std::min(to, p + chunk);
    EXPECT_TRUE(en.blocks->grow(seq, p, e).is_ok());
    b.clear();
    for (int64_t q = p; q < e; ++q) b.add(tokens[static_cast<size_t>(q)], static_cast<int32_t>(q), seq, q + 1 == to);
    const Status st = en.runner->forward(b, &logits);
    EXPECT_TRUE(st.is_ok()) << st.message();
    en.blocks->publish(seq, tokens, p, e);
  }
  return logits;
}

std::vector<int32_t> long_text_tokens(const tok::Tokenizer& tok, int repeat) {
  std::string text;
  for (int i = 0; i < repeat; ++i) {
    text += "Paragraph " + std::to_string(i) +
            ": the river bends past the mill, where the miller counts sacks of grain and the "
            "children race paper boats under the old stone bridge. ";
  }
  return tok.encode(text, true, false);
}

void check_logits_with_hit_equal_cold(const char* model_path, int64_t chunk) {
  const Loaded* l = load(model_path);
  if (l == nullptr) GTEST_SKIP() << "MODEL FILE MISSING: " << repo(model_path) << " — test skipped";
  const Model& m = *l->model;
  std::vector<int32_t> a = long_text_tokens(*l->tok, 3);
  // Within the training context (the synthetic models have 256), with room for b's tail.
  a.resize(std::min<size_t>(a.size(), static_cast<size_t>(m.config().n_ctx_train) - 16));
  std::vector<int32_t> b(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(a.size() * 3 / 4));
  for (int32_t t : l->tok->encode(" and then something else entirely happened", false, false)) b.push_back(t);
  const int64_t n_ctx = static_cast<int64_t>(std::max(a.size(), b.size())) + 8;
  Engine en(m, n_ctx, 2, chunk);
  ASSERT_NE(en.blocks, nullptr);
  const auto sa = en.blocks->allocate(a, 0);
  ASSERT_TRUE(sa.has_value());
  feed(en, sa->seq, a, 0, static_cast<int64_t>(a.size()), chunk);
  const auto sb = en.blocks->allocate(b, 0);
  ASSERT_TRUE(sb.has_value());
  const int64_t hit = sb->hit;
  ASSERT_GE(hit, 32) << "the shared prefix was not reused";
  ASSERT_EQ(hit % en.runner->kv().block_size(), 0);
  if (m.config().has_sliding_window()) {
    int window = 0;
    for (const LayerConfig& lc : m.config().layers) window = std::max(window, lc.sliding_window);
    EXPECT_GT(hit, window) << "the test must reuse a prefix longer than the window";
  }
  const std::vector<float> warm = feed(en, sb->seq, b, hit, static_cast<int64_t>(b.size()), chunk);

  Engine fresh(m, n_ctx, 1, chunk);
  ASSERT_NE(fresh.blocks, nullptr);
  const auto sc = fresh.blocks->allocate(b, 0);
  ASSERT_TRUE(sc.has_value());
  ASSERT_EQ(sc->hit, 0);
  feed(fresh, sc->seq, b, 0, hit, chunk);  // a's chunks over the prefix
  const std::vector<float> cold = feed(fresh, sc->seq, b, hit, static_cast<int64_t>(b.size()), chunk);
  ASSERT_EQ(warm.size(), cold.size());
  ASSERT_FALSE(warm.empty());
  EXPECT_EQ(0, std::memcmp(warm.data(), cold.data(), warm.size() * sizeof(float)))
      << "logits after a cache hit differ from the cold run";
  std::printf("[prefix] %s: %zu-token prompt, %lld tokens reused\n", model_path, b.size(), static_cast<long long>(hit));
}

TEST(PrefixCache, LogitsWithHitEqualColdTinyGemma3LongerThanWindow) {
  check_logits_with_hit_equal_cold("tests/golden/synthetic/tiny-gemma3-f32.gguf", 16);
}
TEST(PrefixCache, LogitsWithHitEqualColdTinyLlama) { check_logits_with_hit_equal_cold(kTinyLlama, 16); }
TEST(PrefixCache, LogitsWithHitEqualColdSmolLM2) { check_logits_with_hit_equal_cold(kSmol, 64); }

// --- through the Scheduler ------------------------------------------------------------

struct Req {
  std::vector<int32_t> prompt;
  RequestOptions req;
  std::unique_ptr<Collector> col = std::make_unique<Collector>();
};

Req make_req(std::vector<int32_t> prompt, int64_t max_tokens) {
  Req r;
  r.prompt = prompt;
  r.req = greedy(std::move(prompt), max_tokens);
  r.req.ignore_eos = true;
  return r;
}

void expect_matches_alone(const Loaded& l, int64_t n_ctx, Req& r, const char* what) {
  const Reference ref = run_alone(l, n_ctx, r.prompt, r.req);
  EXPECT_EQ(r.col->ids(), ref.tokens) << what;
  EXPECT_EQ(r.col->text, ref.text) << what;
}

std::vector<int32_t> with_suffix(std::vector<int32_t> prefix, const tok::Tokenizer& tok, const char* s) {
  for (int32_t t : tok.encode(s, false, false)) prefix.push_back(t);
  return prefix;
}

// A later request, a whole prompt already cached, and prompts longer than the window.
void check_later_requests_hit(const char* model_path, int64_t n_ctx, int repeat) {
  const Loaded* l = load(model_path);
  if (l == nullptr) GTEST_SKIP() << "MODEL FILE MISSING: " << repo(model_path) << " — test skipped";
  const std::vector<int32_t> prefix = long_text_tokens(*l->tok, repeat);
  ASSERT_GT(prefix.size(), 40u);
  std::vector<Req> runs;
  runs.push_back(make_req(with_suffix(prefix, *l->tok, " Question one:"), 12));
  runs.push_back(make_req(with_suffix(prefix, *l->tok, " A different ending"), 12));
  runs.push_back(make_req(runs[0].prompt, 12));  // the whole prompt is cached
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = n_ctx;
  o.step_tokens = 16;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  for (Req& r : runs) {  // one after another: each finds the previous ones' blocks
    ASSERT_EQ(sched->submit(r.req, r.col->fn()).error, SubmitError::kNone);
    ASSERT_TRUE(r.col->wait());
  }
  const CacheStats cs = sched->cache_stats();
  sched->stop(true);
  const int64_t bs = 32;
  EXPECT_EQ(runs[0].col->last.n_cached, 0);
  EXPECT_EQ(runs[1].col->last.n_cached, static_cast<int64_t>(prefix.size()) / bs * bs);
  EXPECT_EQ(runs[2].col->last.n_cached, (static_cast<int64_t>(runs[2].prompt.size()) - 1) / bs * bs);
  EXPECT_EQ(cs.hit_tokens, runs[1].col->last.n_cached + runs[2].col->last.n_cached);
  EXPECT_GT(cs.blocks_cached, 0);
  EXPECT_EQ(cs.bytes_used, 0);
  for (size_t i = 0; i < runs.size(); ++i) expect_matches_alone(*l, n_ctx, runs[i], ("request " + std::to_string(i)).c_str());
}

TEST(PrefixCache, LaterRequestsHitAndMatchTinyGemma3LongerThanWindow) {
  check_later_requests_hit("tests/golden/synthetic/tiny-gemma3-f32.gguf", 256, 1);
}
TEST(PrefixCache, LaterRequestsHitAndMatchTinyLlama) { check_later_requests_hit(kTinyLlama, 256, 1); }
TEST(PrefixCache, LaterRequestsHitAndMatchSmolLM2) { check_later_requests_hit(kSmol, 128, 2); }

// Requests with the same prefix submitted at once race to fill it: whoever publishes a
// block first owns it, the others keep their own copies; everything still matches, and
// a request after them hits.
TEST(PrefixCache, ConcurrentRequestsRacingForTheSamePrefix) {
  LOAD_OR_SKIP(l, kTinyGemma);
  const std::vector<int32_t> prefix = long_text_tokens(*l->tok, 1);
  const char* endings[] = {" one", " two", " three", " four", " one"};
  std::vector<Req> runs;
  for (const char* e : endings) runs.push_back(make_req(with_suffix(prefix, *l->tok, e), 16));
  SchedulerOptions o;
  o.n_parallel = 4;
  o.n_ctx = 256;
  o.step_tokens = 24;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  for (size_t i = 0; i + 1 < runs.size(); ++i) ASSERT_EQ(sched->submit(runs[i].req, runs[i].col->fn()).error, SubmitError::kNone);
  for (size_t i = 0; i + 1 < runs.size(); ++i) ASSERT_TRUE(runs[i].col->wait());
  ASSERT_EQ(sched->submit(runs.back().req, runs.back().col->fn()).error, SubmitError::kNone);
  ASSERT_TRUE(runs.back().col->wait());
  sched->stop(true);
  EXPECT_EQ(runs.back().col->last.n_cached, (static_cast<int64_t>(runs.back().prompt.size()) - 1) / 32 * 32);
  EXPECT_EQ(sched->stats().kv_blocks_used, 0);
  for (size_t i = 0; i < runs.size(); ++i) expect_matches_alone(*l, 256, runs[i], ("request " + std::to_string(i)).c_str());
}

// A pool of one context for three sequences sharing a prefix: sequences are preempted,
// cached blocks are evicted while others still share them, recomputes hit what is
// left, and every output is still the sequential one.
void check_eviction_and_preemption(const char* model_path) {
  const Loaded* l = load(model_path);
  if (l == nullptr) GTEST_SKIP() << "MODEL FILE MISSING: " << repo(model_path) << " — test skipped";
  const std::vector<int32_t> prefix = long_text_tokens(*l->tok, 1);
  const char* endings[] = {" alpha", " beta", " gamma", " delta", " epsilon"};
  std::vector<Req> runs;
  for (const char* e : endings) runs.push_back(make_req(with_suffix(prefix, *l->tok, e), 50));
  const int64_t n_ctx = static_cast<int64_t>(runs[0].prompt.size()) + 64;
  SchedulerOptions o;
  o.n_parallel = 3;
  o.n_ctx = n_ctx;
  o.step_tokens = 12;
  o.kv_blocks = (n_ctx + 31) / 32;  // one full context
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  for (Req& r : runs) ASSERT_EQ(sched->submit(r.req, r.col->fn()).error, SubmitError::kNone);
  for (Req& r : runs) ASSERT_TRUE(r.col->wait());
  const SchedulerStats st = sched->stats();
  const CacheStats cs = sched->cache_stats();
  sched->stop(true);
  EXPECT_GT(st.preempted, 0) << "the small pool never forced a preemption";
  EXPECT_GT(cs.hit_tokens, 0) << "no admission reused a cached prefix";
  EXPECT_GT(cs.recompute_hit_tokens, 0) << "no preempted sequence found its blocks cached";
  EXPECT_EQ(st.kv_blocks_used, 0);
  std::printf("[prefix] %lld preempted, %lld tokens hit, %lld missed, %lld hit by recomputes\n",
              static_cast<long long>(st.preempted), static_cast<long long>(cs.hit_tokens),
              static_cast<long long>(cs.miss_tokens), static_cast<long long>(cs.recompute_hit_tokens));
  for (size_t i = 0; i < runs.size(); ++i) expect_matches_alone(*l, n_ctx, runs[i], ("request " + std::to_string(i)).c_str());
}

TEST(PrefixCache, EvictionAndPreemptionWhileSharedTinyLlama) { check_eviction_and_preemption(kTinyLlama); }
TEST(PrefixCache, EvictionAndPreemptionWhileSharedTinyGemma3) { check_eviction_and_preemption(kTinyGemma); }

// warm() computes and pins a prefix: other traffic cannot evict it, requests starting
// with it hit it, and unpin() lets it go.
TEST(PrefixCache, WarmPinsAPrefix) {
  LOAD_OR_SKIP(l, kTinyGemma);
  const std::vector<int32_t> prefix = long_text_tokens(*l->tok, 1);
  const int64_t n_ctx = 256;
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = n_ctx;
  o.step_tokens = 32;
  o.kv_blocks = 14;  // room for the pin (prefix blocks) and one context
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  Collector warm;
  ASSERT_EQ(sched->warm(prefix, warm.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(warm.wait());
  EXPECT_EQ(warm.finish, FinishReason::kStop);
  EXPECT_TRUE(warm.tokens.empty());
  const int64_t pinned_tokens = static_cast<int64_t>(prefix.size()) / 32 * 32;
  EXPECT_GT(sched->cache_stats().blocks_pinned, pinned_tokens / 32 - 1);
  // Unrelated long requests cycle through the whole pool.
  std::vector<Req> filler;
  for (int i = 0; i < 3; ++i) {
    std::string text = "Unrelated " + std::to_string(i) + ":";
    while (text.size() < 200) text += " the quick brown fox jumps over the lazy dog";
    filler.push_back(make_req(l->tok->encode(text, true, false), 8));
  }
  for (Req& r : filler) ASSERT_EQ(sched->submit(r.req, r.col->fn()).error, SubmitError::kNone);
  for (Req& r : filler) ASSERT_TRUE(r.col->wait());
  Req hit = make_req(with_suffix(prefix, *l->tok, " and then"), 8);
  ASSERT_EQ(sched->submit(hit.req, hit.col->fn()).error, SubmitError::kNone);
  ASSERT_TRUE(hit.col->wait());
  EXPECT_EQ(hit.col->last.n_cached, pinned_tokens) << "the pinned prefix was evicted";
  sched->unpin(prefix);
  for (int i = 0; i < 200 && sched->cache_stats().blocks_pinned > 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(sched->cache_stats().blocks_pinned, 0);
  sched->stop(true);
  expect_matches_alone(*l, n_ctx, hit, "request after warm");
}

// --- measurements (printed; the machine may be shared) ---------------------------------

// KV memory of Gemma 3 270M at a 32K context, from the pool sizes: local layers keep
// their window (512) and a step's tokens instead of the context.
TEST(PrefixCache, Gemma3KvMemoryAt32kIsBoundedByTheWindow) {
  const Loaded* l = load(kGemma270m);
  if (l == nullptr) GTEST_SKIP() << "MODEL FILE MISSING: " << repo(kGemma270m) << " — test skipped";
  const Model& m = *l->model;
  const int64_t n_ctx = std::min<int64_t>(32768, m.config().n_ctx_train);
  ASSERT_EQ(n_ctx, 32768);
  const KvConfig with = m.kv_config(n_ctx, 1, 512);
  KvConfig without = with;
  without.n_blocks_local = 0;  // every layer sized by the context
  const int64_t b_with = KvCache::bytes_for(with), b_without = KvCache::bytes_for(without);
  const double ratio = static_cast<double>(b_with) / static_cast<double>(b_without);
  std::printf("[kv] gemma-3-270m, 32K context, 1 sequence, 512 tokens per step: %.1f MiB with window release, "
              "%.1f MiB without (%.1f%%)\n",
              static_cast<double>(b_with) / (1 << 20), static_cast<double>(b_without) / (1 << 20), 100.0 * ratio);
  EXPECT_LE(ratio, 0.30);
  const KvConfig four = m.kv_config(n_ctx, 4, 512);
  KvConfig four_without = four;
  four_without.n_blocks_local = 0;
  std::printf("[kv] gemma-3-270m, 32K context, 4 sequences: %.1f MiB with, %.1f MiB without\n",
              static_cast<double>(KvCache::bytes_for(four)) / (1 << 20),
              static_cast<double>(KvCache::bytes_for(four_without)) / (1 << 20));
}

// Time to first token of a request behind a 2,000-token shared system prompt, cold and
// then with the prompt cached. Slow (a 2,000-token prefill of SmolLM2): run it with
// --gtest_also_run_disabled_tests --gtest_filter='*Ttft*'.
TEST(PrefixCache, DISABLED_TtftSharedSystemPromptSmolLM2) {
  LOAD_OR_SKIP(l, kSmol);
  std::vector<int32_t> system = long_text_tokens(*l->tok, 60);
  system.resize(2000);
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 2304;
  o.n_threads = 0;  // the usable CPUs
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  double ttft[3] = {0, 0, 0};
  int64_t cached[3] = {0, 0, 0};
  const char* questions[] = {" What is the mill for?", " Who races boats?", " Where is the bridge?"};
  for (int i = 0; i < 3; ++i) {
    Req r = make_req(with_suffix(system, *l->tok, questions[i]), 1);
    ASSERT_EQ(sched->submit(r.req, r.col->fn()).error, SubmitError::kNone);
    ASSERT_TRUE(r.col->wait());
    ttft[i] = r.col->last.ttft_ms;
    cached[i] = r.col->last.n_cached;
  }
  sched->stop(true);
  std::printf("[ttft] SmolLM2, 2,000-token shared system prompt, %d threads: cold %.1f ms; warm %.1f ms and "
              "%.1f ms (%lld and %lld tokens cached)\n",
              default_thread_count(), ttft[0], ttft[1], ttft[2], static_cast<long long>(cached[1]),
              static_cast<long long>(cached[2]));
  EXPECT_EQ(cached[0], 0);
  EXPECT_GE(cached[1], 1984);
}

}  // namespace
}  // namespace flashlm
