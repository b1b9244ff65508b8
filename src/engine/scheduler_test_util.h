// Helpers shared by the Scheduler tests: models loaded once per binary, a collector of
// one request's events, and the single-sequence reference run.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/generate.h"
#include "engine/scheduler.h"

namespace flashlm::test {

using namespace std::chrono_literals;

inline std::string repo(const std::string& rel) { return std::string(FLASHLM_SOURCE_DIR) + "/" + rel; }

// One forward thread by default: the batched and sequential paths give the same
// per-token results at any thread count, and spinning pool workers are slow on shared
// 2-core test machines. FLASHLM_TEST_THREADS=n runs the pool (e.g. under TSan).
inline int test_threads() {
  const char* env = std::getenv("FLASHLM_TEST_THREADS");
  const int n = env ? std::atoi(env) : 1;
  return n > 0 ? n : 1;
}

inline const char* const kSmol = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
inline const char* const kTinyLlama = "tests/golden/synthetic/tiny-llama-q8_0.gguf";
inline const char* const kTinyGemma = "tests/golden/synthetic/tiny-gemma3-f32.gguf";
inline const char* const kTinyQwen3 = "tests/golden/synthetic/tiny-qwen3-f32.gguf";

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<tok::Tokenizer> tok;
};

// Models load once per test binary. Returns null (and says why) when the file is absent.
inline const Loaded* load(const std::string& rel) {
  static std::map<std::string, std::unique_ptr<Loaded>> cache;
  auto it = cache.find(rel);
  if (it != cache.end()) return it->second.get();
  const std::string path = repo(rel);
  if (!std::filesystem::exists(path)) return nullptr;
  auto m = Model::load(path);
  if (!m) {
    ADD_FAILURE() << m.message();
    return nullptr;
  }
  auto t = tok::Tokenizer::from_gguf((*m)->file());
  if (!t) {
    ADD_FAILURE() << t.message();
    return nullptr;
  }
  auto l = std::make_unique<Loaded>();
  l->model = std::move(m.value());
  l->tok = std::make_unique<tok::Tokenizer>(std::move(t.value()));
  return cache.emplace(rel, std::move(l)).first->second.get();
}

#define LOAD_OR_SKIP(var, rel)                                                                         \
  const Loaded* var = load(rel);                                                                       \
  if (var == nullptr) {                                                                                \
    GTEST_SKIP() << "MODEL FILE MISSING: " << repo(rel) << " — run scripts/fetch_models.sh; test skipped"; \
  }

// Everything one request's handler saw.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::string text;
  std::vector<TokenInfo> tokens;
  std::vector<StreamEvent> events;
  int n_finish = 0;
  FinishReason finish = FinishReason::kNone;
  StreamEvent last;
  std::function<void(const StreamEvent&)> extra;  // runs first, on the scheduler thread

  EventFn fn() {
    return [this](const StreamEvent& ev) {
      if (extra) extra(ev);
      std::lock_guard<std::mutex> lk(mu);
      text += ev.text;
      tokens.insert(tokens.end(), ev.tokens.begin(), ev.tokens.end());
      events.push_back(ev);
      last = ev;
      if (ev.finish != FinishReason::kNone) {
        ++n_finish;
        finish = ev.finish;
      }
      cv.notify_all();
    };
  }
  bool wait(std::chrono::milliseconds limit = 300s) {  // generous: sanitizer builds are slow
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, limit, [&] { return n_finish > 0; });
  }
  bool wait_events(size_t n, std::chrono::milliseconds limit = 60s) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, limit, [&] { return events.size() >= n; });
  }
  std::vector<int32_t> ids() {
    std::lock_guard<std::mutex> lk(mu);
    std::vector<int32_t> out;
    for (const TokenInfo& t : tokens) out.push_back(t.token);
    return out;
  }
};

// One prompt alone on its own engine (one sequence, nothing else in any step): what a
// batched request must reproduce.
struct Reference {
  std::vector<int32_t> tokens;
  std::string text;
  std::string finish;
};

inline Reference run_alone(const Loaded& l, int64_t n_ctx, const std::vector<int32_t>& prompt, const RequestOptions& r) {
  SchedulerOptions o;
  o.n_parallel = 1;
  o.n_threads = test_threads();
  o.n_ctx = n_ctx;  // batch-invariant, as the scheduler under test runs by default
  auto engine = Scheduler::create(*l.model, *l.tok, o);
  EXPECT_TRUE(engine.is_ok()) << engine.message();
  if (!engine) return {};
  RequestOptions req = r;
  req.prompt = prompt;
  Reference ref;
  GenerateStats st;
  Status s = generate(**engine, std::move(req),
                      [&](std::string_view piece) {
                        ref.text += piece;
                      },
                      &st);
  EXPECT_TRUE(s.is_ok()) << s.message();
  ref.tokens = st.generated;
  ref.finish = st.finish_reason;
  return ref;
}

// Runs a function at scope exit (opens a test's gate before the scheduler is stopped).
struct Defer {
  std::function<void()> fn;
  explicit Defer(std::function<void()> f) : fn(std::move(f)) {}
  ~Defer() { fn(); }
};

inline void open_the_gate(std::mutex& mu, std::condition_variable& gate, bool& open) {
  {
    std::lock_guard<std::mutex> lk(mu);
    open = true;
  }
  gate.notify_all();
}

// Tests declare everything their handlers touch before the scheduler, so a scheduler
// stopped by an early return never calls into destroyed objects.
inline std::unique_ptr<Scheduler> make(const Loaded& l, SchedulerOptions o) {
  if (o.n_threads == 0) o.n_threads = test_threads();
  auto s = Scheduler::create(*l.model, *l.tok, o);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return s ? std::move(s.value()) : nullptr;
}

inline RequestOptions greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  RequestOptions r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0.0f;
  return r;
}

}  // namespace flashlm::test
