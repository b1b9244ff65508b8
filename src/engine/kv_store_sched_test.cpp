// The scheduler with a persistent KV store (SchedulerOptions::kv_store_dir): blocks
// written by one scheduler are found by a new one on the same directory (a restart),
// never by another model, and damaged files are skipped. Greedy outputs are compared
// with the single-sequence path run cold (run_alone), never with flashlm's own cached
// output. Also: the max_queue bound and the per-step batch-size histogram.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <unistd.h>
#include <vector>

#include "engine/scheduler_test_util.h"

namespace flashlm::test {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("flashlm-kvstore-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<int32_t> long_prompt(const tok::Tokenizer& tok, int repeat) {
  std::string text;
  for (int i = 0; i < repeat; ++i) {
    text += "Entry " + std::to_string(i) + ": the lamplighter walks the harbour wall at dusk, counting the "
            "boats that came home and the gulls asleep on the pier. ";
  }
  std::vector<int32_t> ids = tok.encode(text, false, false);
  if (ids.size() > 200) ids.resize(200);  // the synthetic models' context is 256
  return ids;
}

struct RunResult {
  std::vector<int32_t> ids;
  std::string text;
  int64_t n_cached = -1;
  CacheStats cache;
};

// One greedy request on a new scheduler over `dir`, then stop(true) (which flushes).
RunResult run_with_store(const Loaded& l, const std::string& dir, const std::vector<int32_t>& prompt, int64_t n_ctx) {
  RunResult out;
  Collector col;
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = n_ctx;
  o.step_tokens = 64;
  o.kv_store_dir = dir;
  auto sched = make(l, o);
  if (sched == nullptr) return out;
  RequestOptions r = greedy(prompt, 8);
  r.ignore_eos = true;
  const SubmitResult sr = sched->submit(r, col.fn());
  EXPECT_EQ(sr.error, SubmitError::kNone) << sr.message;
  if (sr.error != SubmitError::kNone) return out;
  EXPECT_TRUE(col.wait());
  sched->stop(true);
  out.cache = sched->cache_stats();
  out.ids = col.ids();
  out.text = col.text;
  out.n_cached = col.last.n_cached;
  return out;
}

Reference cold(const Loaded& l, const std::vector<int32_t>& prompt, int64_t n_ctx) {
  RequestOptions r = greedy(prompt, 8);
  r.ignore_eos = true;
  return run_alone(l, n_ctx, prompt, r);
}

std::vector<fs::path> block_files(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".kvb") out.push_back(e.path());
  }
  return out;
}

void check_restart_reuses_blocks(const char* model_path, int repeat, int64_t n_ctx) {
  LOAD_OR_SKIP(l, model_path);
  TempDir dir(std::string("restart-") + std::to_string(repeat));
  const std::vector<int32_t> prompt = long_prompt(*l->tok, repeat);
  ASSERT_LT(static_cast<int64_t>(prompt.size()) + 16, n_ctx);
  const Reference ref = cold(*l, prompt, n_ctx);

  const RunResult first = run_with_store(*l, dir.path.string(), prompt, n_ctx);
  EXPECT_EQ(first.n_cached, 0);
  EXPECT_TRUE(first.cache.store_enabled);
  EXPECT_GT(first.cache.store.writes, 0);
  EXPECT_EQ(first.cache.store.pending, 0);  // stop() flushed
  EXPECT_EQ(first.cache.store_blocks_loaded, 0);
  EXPECT_EQ(first.ids, ref.tokens);
  ASSERT_FALSE(block_files(dir.path.string()).empty());

  const RunResult second = run_with_store(*l, dir.path.string(), prompt, n_ctx);
  const int64_t bs = 32;
  EXPECT_EQ(second.n_cached, (static_cast<int64_t>(prompt.size()) - 1) / bs * bs) << "blocks should come from disk";
  EXPECT_GT(second.cache.store_blocks_loaded, 0);
  // Local groups load only the blocks the last window needs, not the whole prefix.
  const int64_t k = second.n_cached / bs;
  int64_t most = 0;
  for (const KvGroupStats& g : second.cache.groups) most += g.window > 0 ? std::min<int64_t>(k, g.window / bs + 2) : k;
  EXPECT_LE(second.cache.store_blocks_loaded, most);
  EXPECT_EQ(second.cache.store_blocks_rejected, 0);
  EXPECT_EQ(second.cache.store.corrupt, 0);
  EXPECT_EQ(second.ids, ref.tokens);
  EXPECT_EQ(second.text, ref.text);
}

TEST(KvStoreScheduler, RestartReusesBlocksFromDiskTinyLlama) { check_restart_reuses_blocks(kTinyLlama, 4, 256); }

// Gemma 3's sliding window (8 tokens in the synthetic model) is far shorter than the
// prompt: only the last window's blocks are needed in the local group.
TEST(KvStoreScheduler, RestartReusesBlocksFromDiskTinyGemma3LongerThanWindow) {
  check_restart_reuses_blocks(kTinyGemma, 4, 256);
}

TEST(KvStoreScheduler, AnotherModelOnTheSameDirectoryReusesNothing) {
  LOAD_OR_SKIP(a, kTinyLlama);
  LOAD_OR_SKIP(b, kTinyQwen3);
  TempDir dir("other-model");
  const int64_t n_ctx = 256;
  const std::vector<int32_t> pa = long_prompt(*a->tok, 4);
  const RunResult first = run_with_store(*a, dir.path.string(), pa, n_ctx);
  EXPECT_GT(first.cache.store.writes, 0);
  // The other model, same directory, the very same token ids when its vocabulary takes
  // them (the synthetic models share one): the block hashes match, the namespace does not.
  std::vector<int32_t> pb = pa;
  for (int32_t t : pa) {
    if (t >= b->model->config().n_vocab) pb = long_prompt(*b->tok, 4);
  }
  const RunResult other = run_with_store(*b, dir.path.string(), pb, n_ctx);
  EXPECT_EQ(other.n_cached, 0);
  EXPECT_EQ(other.cache.store_blocks_loaded, 0);
  EXPECT_EQ(other.cache.store.hits, 0);
  EXPECT_GT(other.cache.store.writes, 0);  // its own blocks, in its own namespace
  EXPECT_EQ(other.ids, cold(*b, pb, n_ctx).tokens);
  // Both namespaces now sit side by side in the directory.
  int n_dirs = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) n_dirs += e.is_directory() ? 1 : 0;
  EXPECT_EQ(n_dirs, 2);
}

TEST(KvStoreScheduler, CorruptBlockFilesAreSkipped) {
  LOAD_OR_SKIP(l, kTinyLlama);
  TempDir dir("corrupt");
  const int64_t n_ctx = 256;
  const std::vector<int32_t> prompt = long_prompt(*l->tok, 4);
  const Reference ref = cold(*l, prompt, n_ctx);
  const RunResult first = run_with_store(*l, dir.path.string(), prompt, n_ctx);
  const std::vector<fs::path> files = block_files(dir.path.string());
  ASSERT_GE(files.size(), 2u);
  // Flip one byte in the middle of every file (the payload).
  for (const fs::path& f : files) {
    std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(io.good()) << f;
    const auto mid = static_cast<std::streamoff>(fs::file_size(f) / 2);
    io.seekg(mid);
    char c = 0;
    io.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    io.seekp(mid);
    io.write(&c, 1);
  }
  const RunResult again = run_with_store(*l, dir.path.string(), prompt, n_ctx);
  EXPECT_EQ(again.n_cached, 0);  // the first block is bad, so no prefix survives
  EXPECT_GT(again.cache.store.corrupt, 0);
  EXPECT_EQ(again.cache.store_blocks_loaded, 0);
  EXPECT_EQ(again.ids, ref.tokens);
  EXPECT_EQ(again.text, ref.text);
  // The run wrote good blocks again: a third start reuses them.
  const RunResult third = run_with_store(*l, dir.path.string(), prompt, n_ctx);
  EXPECT_GT(third.n_cached, 0);
  EXPECT_EQ(third.ids, ref.tokens);
}

TEST(KvStoreScheduler, UnwritableStoreDirectoryIsAnError) {
  LOAD_OR_SKIP(l, kTinyLlama);
  TempDir dir("file");
  const fs::path file = dir.path / "not-a-dir";
  std::ofstream(file) << "x";
  SchedulerOptions o;
  o.kv_store_dir = file.string();
  auto s = Scheduler::create(*l->model, *l->tok, o);
  EXPECT_FALSE(s.is_ok());
}

// max_queue counts only requests beyond the free running slots: with max_queue 0, as
// many requests as there are slots are accepted, and one more is refused.
TEST(SchedulerQueue, MaxQueueZeroStillFillsFreeSlots) {
  LOAD_OR_SKIP(l, kTinyLlama);
  std::mutex mu;
  std::condition_variable gate;
  bool open = false;
  Collector a, b, c;
  // Holds the scheduler thread in a's first event, so a and b cannot finish meanwhile.
  a.extra = [&](const StreamEvent&) {
    std::unique_lock<std::mutex> lk(mu);
    gate.wait(lk, [&] { return open; });
  };
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 128;
  o.step_tokens = 16;
  o.max_queue = 0;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  Defer release([&] { open_the_gate(mu, gate, open); });
  const std::vector<int32_t> prompt = l->tok->encode("Once upon a time", false, false);
  EXPECT_EQ(sched->submit(greedy(prompt, 32), a.fn()).error, SubmitError::kNone);
  EXPECT_EQ(sched->submit(greedy(prompt, 32), b.fn()).error, SubmitError::kNone);
  const SubmitResult third = sched->submit(greedy(prompt, 32), c.fn());
  EXPECT_EQ(third.error, SubmitError::kQueueFull) << third.message;
  open_the_gate(mu, gate, open);
  EXPECT_TRUE(a.wait());
  EXPECT_TRUE(b.wait());
  // Both slots free again: a new request is accepted.
  Collector d;
  EXPECT_EQ(sched->submit(greedy(prompt, 4), d.fn()).error, SubmitError::kNone);
  EXPECT_TRUE(d.wait());
  sched->stop(true);
}

TEST(SchedulerStatsTest, StepHistogramSumsToSteps) {
  LOAD_OR_SKIP(l, kTinyLlama);
  SchedulerOptions o;
  o.n_parallel = 2;
  o.n_ctx = 256;
  o.step_tokens = 64;
  Collector a, b;
  auto sched = make(*l, o);
  ASSERT_NE(sched, nullptr);
  const std::vector<int32_t> prompt = long_prompt(*l->tok, 2);
  ASSERT_EQ(sched->submit(greedy(prompt, 6), a.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(a.wait());
  ASSERT_EQ(sched->submit(greedy(prompt, 6), b.fn()).error, SubmitError::kNone);
  ASSERT_TRUE(b.wait());
  sched->stop(true);
  const SchedulerStats st = sched->stats();
  ASSERT_GT(st.steps, 0);
  EXPECT_EQ(std::accumulate(st.step_tokens_hist.begin(), st.step_tokens_hist.end(), int64_t{0}), st.steps);
  EXPECT_GT(st.step_tokens_hist[0], 0);  // lone decode steps: one token
  // The prefill steps hold more than one token.
  EXPECT_GT(std::accumulate(st.step_tokens_hist.begin() + 1, st.step_tokens_hist.end(), int64_t{0}), 0);
  EXPECT_EQ(st.step_tokens_hist.back(), 0);  // never more than step_tokens
  EXPECT_GE(st.step_tokens_sum, st.prompt_tokens);
}

}  // namespace
}  // namespace flashlm::test
