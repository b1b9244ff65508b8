// The generation engine of every command (serve: many requests; run and chat: one at a
// time, through generate.h). Continuous batching: many requests share one model, one
// thread pool and one paged KV pool. The scheduler only plans steps; the BlockManager
// (block_manager.h) holds the sequences' KV blocks and the Runner (runner.h) runs the
// forward passes. One scheduler thread runs a loop of steps; every step is a single
// forward pass over the next token of every running sequence plus prefill chunks of
// waiting ones, under a per-step token budget, so a long prompt never stalls running
// streams.
// Requests join and leave at any step. Events (text pieces, the finish) are delivered
// on the scheduler thread through the request's callback; handlers must be short and
// must not call back into the scheduler except cancel().
//
// Events: one whenever a sampled token completes new text (text held back for a
// possible stop string or an incomplete UTF-8 character travels with a later event),
// and exactly one final event with finish != kNone, after which the handler is never
// called again. The end-of-generation token is neither counted nor reported.
// KV: sequences take blocks as they grow, step by step. When the pool runs dry, the
// youngest running sequence is preempted: its blocks are freed and it re-enters the queue
// at the front, later recomputing its KV from prompt + generated tokens. Its stream just
// pauses; the tokens it produces do not change.
// Prefix caching is automatic: a request whose token stream starts with full KV blocks
// that another (running or finished) request computed reuses them (kv/kv_cache.h), and
// a preempted request's recompute hits its own blocks while they are still cached.
// StreamEvent::n_cached says how many prompt tokens were reused. Requests that score their
// prompt (RequestOptions::prompt_logprobs) reuse nothing until it is scored.
// Persistent store (SchedulerOptions::kv_store_dir, kv/kv_store.h): every block the
// cache publishes is also queued to a background writer, and at admission the blocks of
// a prompt's reusable prefix that memory lacks are read from disk (verified, and checked
// against the prompt's tokens and chain) and imported before the prefix is reused. Nothing
// is read at start-up. The store's namespace is the model's fingerprint and the KV layout.
#pragma once

#include <cstdint>
#include <array>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "engine/block_manager.h"
#include "engine/runner.h"
#include "grammar/grammar.h"
#include "grammar/token_trie.h"
#include "models/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"
#include "util/status.h"

namespace flashlm {

struct SchedulerOptions {
  int n_parallel = 4;        // sequences running at once
  int64_t n_ctx = 0;         // positions per sequence; 0: min(training context, 4096)
  // KV pool (RuntimeOptions): in blocks, or a byte budget; 0: n_parallel * n_ctx worth.
  // Blocks beyond what the running sequences use hold cached prefixes.
  int64_t kv_blocks = 0, kv_mem_bytes = 0;
  int step_tokens = 512;     // tokens per forward pass (decode tokens + prefill chunks)
  int max_queue = 256;       // waiting requests beyond the free running slots; more are refused
  int n_threads = 0;         // 0: usable_cpu_count()
  // Each sequence's results independent of what else runs in the step (MatmulOptions):
  // greedy outputs equal the same requests run one at a time. Off, prefill steps may use
  // the faster panel GEMM, which rounds differently (what `run` and `chat` use: one
  // sequence has no batch to be independent of).
  bool batch_invariant = true;
  DType kv_type = kDefaultKvType;  // element type of the KV cache (runner.h)
  std::string kv_store_dir{};      // persistent KV block store; empty: off
  int64_t kv_store_bytes = int64_t{2} << 30;  // bound on the store's bytes on disk
};

struct RequestOptions {
  std::vector<int32_t> prompt;     // token ids (already templated and tokenized)
  int64_t max_tokens = -1;         // < 0: until end of generation or the context is full
  SamplingParams sampling;
  std::vector<std::string> stop;   // stop strings (not included in the output)
  bool ignore_eos = false;
  int top_logprobs = -1;           // < 0: no logprobs; 0..20: chosen + that many alternatives
  // >= 0 (0..20): also score the prompt (a completion's echo): for every prompt token
  // after the first, its log-probability given the tokens before it (the model's own
  // distribution: temperature 1, no penalties) and that many alternatives, delivered as
  // StreamEvent::prompt_tokens. Such a request runs its whole prompt through the model:
  // the prefix cache and the KV store do not supply its positions (they would skip the
  // rows that score them). With it, max_tokens 0 scores the prompt and generates nothing.
  int prompt_logprobs = -1;
  double timeout_s = 0.0;          // > 0: finish with kTimeout after this long
  // Constrained decoding: every generated token keeps the text a prefix of the grammar's
  // language, and the request ends (finish "stop") when the grammar is complete and
  // cannot continue. Shared by the n sequences of one request; each has its own Matcher.
  std::shared_ptr<const grammar::Grammar> grammar;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kTimeout, kError };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", ...

// Why submit() refused a request (the server maps these to HTTP codes).
enum class SubmitError { kNone, kInvalid, kTooLong, kQueueFull, kShuttingDown };

struct SubmitResult {
  uint64_t id = 0;            // valid when error == kNone
  SubmitError error = SubmitError::kNone;
  std::string message;        // human-readable reason when refused
};

struct TokenInfo {
  int32_t token = -1;
  SampleLogprobs logprobs;    // filled when RequestOptions::top_logprobs >= 0
};

struct StreamEvent {
  std::string text;                 // new text, valid UTF-8 (may be empty)
  std::vector<TokenInfo> tokens;    // tokens sampled since the previous event
  // With RequestOptions::prompt_logprobs >= 0, on the request's first event only: prompt
  // tokens 1..n_prompt-1 scored (token, its logprob, the alternatives), in order.
  std::vector<TokenInfo> prompt_tokens;
  FinishReason finish = FinishReason::kNone;  // set on the last event of a request
  std::string error;                // with kError
  int64_t n_prompt = 0;             // usage, valid on every event
  int64_t n_generated = 0;
  int64_t n_cached = 0;             // prompt tokens whose KV was reused (prefix cache)
  double ttft_ms = -1.0;            // time to first token, set once it is known
};
using EventFn = std::function<void(const StreamEvent&)>;

// Upper bounds (tokens in one forward pass) of SchedulerStats::step_tokens_hist's buckets;
// the last bucket, past these, is +Inf.
inline constexpr int64_t kStepTokenBuckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
inline constexpr size_t kStepTokenBucketCount = std::size(kStepTokenBuckets) + 1;

struct SchedulerStats {
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_used = 0, kv_blocks_free = 0;  // all groups; free includes cached (evictable) blocks
  int64_t steps = 0, prompt_tokens = 0, generated_tokens = 0;
  int64_t last_step_tokens = 0;     // batch size of the most recent step
  double busy_s = 0.0;              // time spent in forward passes
  int64_t preempted = 0;            // sequences sent back to the queue for KV blocks
  // Steps by batch size, NOT cumulative: [i] counts steps of n tokens with
  // kStepTokenBuckets[i-1] < n <= kStepTokenBuckets[i] (the last: n > 512). Sums to steps.
  std::array<int64_t, kStepTokenBucketCount> step_tokens_hist{};
  int64_t step_tokens_sum = 0;      // tokens over all steps (the histogram's _sum)
};

class Scheduler {
 public:
  static Result<std::unique_ptr<Scheduler>> create(const Model& model, const tok::Tokenizer& tok,
                                                   SchedulerOptions opts);
  ~Scheduler();  // stop(false)

  // Thread-safe. Queues the request or refuses it without side effects.
  SubmitResult submit(RequestOptions req, EventFn on_event);
  // Thread-safe. The request finishes with kCancelled and its KV blocks are freed by
  // the next step; unknown or finished ids are ignored.
  void cancel(uint64_t id);
  // drain: finish running and queued requests first; otherwise cancel them all.
  // Returns when the scheduler thread has exited. New submits are refused from then on.
  void stop(bool drain);

  // Thread-safe. Computes the KV of a token prefix (reusing what is cached) and pins its
  // full blocks, so requests starting with it hit the cache until unpin(). on_done hears
  // one final event (kStop when pinned; n_cached: tokens that were already cached).
  SubmitResult warm(std::vector<int32_t> tokens, EventFn on_done);
  // Thread-safe. Releases a warm() pin at the next step; the blocks stay cached (evictable).
  void unpin(std::vector<int32_t> tokens);

  SchedulerStats stats() const;  // thread-safe snapshot
  CacheStats cache_stats() const;  // thread-safe snapshot
  int64_t n_ctx() const;
  const Model& model() const;

  struct Impl;

 private:
  explicit Scheduler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashlm
