// The scheduler loop. One step:
//   1. release unpinned prefixes; end cancelled and timed-out requests (their KV blocks
//      go back to the pool, published ones as cached prefixes);
//   2. admit waiting requests, FIFO, while a sequence slot is free: each takes the
//      longest cached prefix of its tokens, and is admitted when every KV group has the
//      blocks for the rest (local groups: their window) plus one spare per running one
//      (BlockManager::allocate);
//   3. plan the batch (step_plan.h: decode tokens first, then prefill chunks) and give
//      every chunk its blocks, preempting the youngest sequence when a pool runs dry
//      (see prepare_step);
//   4. run one forward pass on the model runner, publish newly full blocks (and queue
//      them to the persistent store), and sample/stream every sequence that got a
//      logits row.
// With a persistent store, admission first imports from disk the blocks of the head's
// reusable prefix that memory lacks (BlockManager::read_through), with mu released.
// Handlers are called on this thread with no lock held, so they may call cancel().
#include "engine/scheduler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "engine/sequence.h"
#include "engine/step_plan.h"
#include "formats/gguf_fingerprint.h"

namespace flashlm {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kTimeout: return "timeout";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

namespace {

constexpr int kMaxTopLogprobs = 20;
constexpr int kMaxParallel = 1024;
// Logits floats a step may hold for prompt scoring (32 MiB): a scoring sequence's prefill
// chunks are capped at this over n_vocab rows (shared among the scoring sequences), so a
// long echoed prompt never needs a [step_tokens, n_vocab] logits buffer.
constexpr int64_t kMaxScoreLogitsFloats = int64_t{8} << 20;

size_t step_bucket(int64_t n_tok) {
  size_t i = 0;
  while (i < std::size(kStepTokenBuckets) && n_tok > kStepTokenBuckets[i]) ++i;
  return i;
}

}  // namespace

// What each token adds to the text, for grammar masks; control and end-of-generation
// tokens add nothing a grammar can match (the end is allowed separately).
static std::vector<std::string> grammar_pieces(const tok::Tokenizer& tok) {
  std::vector<std::string> pieces(static_cast<size_t>(tok.n_vocab()));
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    if (!tok.is_control(id) && !tok.is_eog(id)) pieces[static_cast<size_t>(id)] = tok.token_to_piece(id);
  }
  return pieces;
}

struct Scheduler::Impl {
  Impl(const Model& m, const tok::Tokenizer& t, const SchedulerOptions& o, std::unique_ptr<Runner> r,
       std::unique_ptr<KvStore> store)
      : model(m), tok(t), opts(o), n_ctx(r->n_ctx()), n_vocab(static_cast<int32_t>(m.config().n_vocab)),
        runner(std::move(r)), blocks(runner->kv(), std::move(store)) {
    logits.reserve(static_cast<size_t>(opts.n_parallel) * static_cast<size_t>(n_vocab));
    running.reserve(static_cast<size_t>(opts.n_parallel));
    publish_locked();
  }

  SubmitResult submit(RequestOptions req, EventFn on_event, bool warm = false);
  void cancel(uint64_t id);
  void stop(bool drain);

  void loop();
  void step();
  void end_cancelled(SchedClock::time_point now);
  void admit();
  bool prepare_step();
  void preempt(size_t i);
  void run_batch();
  // Removes running[i] from the running set and releases its KV blocks.
  std::unique_ptr<Sequence> take_running(size_t i);
  // The last event of a request: it leaves the live set, stats show its blocks freed,
  // then its handler hears the finish.
  void finish(std::unique_ptr<Sequence> seq, const StreamEvent& ev);
  void publish_locked();  // refreshes the stats gauges; mu held

  // Fixed after create().
  const Model& model;
  const tok::Tokenizer& tok;
  const SchedulerOptions opts;
  const int64_t n_ctx;
  const int32_t n_vocab;
  std::thread::id loop_id;

  // Shared with other threads, under mu.
  mutable std::mutex mu;
  std::condition_variable cv;                      // a submit, a cancel or stop wakes the loop
  std::deque<std::unique_ptr<Sequence>> waiting;   // FIFO; preempted sequences re-enter at the front
  std::unordered_map<uint64_t, Sequence*> live;    // waiting and running requests, for cancel()
  bool stopping = false;
  SchedulerStats stats;
  CacheStats cstats;
  std::vector<std::vector<int32_t>> unpins;        // from unpin(), applied by the next step
  std::atomic<uint64_t> next_id{1};
  // The vocabulary as a trie for grammar masks: built by the first constrained request.
  std::once_flag trie_once;
  std::unique_ptr<grammar::TokenTrie> trie;

  std::mutex join_mu;  // serialises stop() callers around the join
  std::thread thread;

  // The scheduler thread's own state. blocks and running are also changed under mu in
  // admit(), and read under it in publish_locked(); no other thread touches them.
  std::unique_ptr<Runner> runner;  // thread pool, KV cache, forward scratch
  BlockManager blocks;             // which KV blocks each running sequence holds
  Batch batch;
  std::vector<float> logits;
  std::vector<std::unique_ptr<Sequence>> running;  // admission order: the back is the youngest
  std::vector<int64_t> pending;
  std::vector<int64_t> max_chunk;  // per running sequence; 0: no cap (see prepare_step)
  std::vector<StepChunk> plan;
};

SubmitResult Scheduler::Impl::submit(RequestOptions req, EventFn on_event, bool warm) {
  SubmitResult r;
  auto refuse = [&r](SubmitError e, std::string msg) {
    r.error = e;
    r.message = std::move(msg);
    return r;
  };
  auto outside_vocab = [&](const char* what, int32_t t) {
    return refuse(SubmitError::kInvalid, std::string(what) + " token id " + std::to_string(t) +
                                             " is outside the vocabulary [0, " + std::to_string(n_vocab) + ")");
  };
  if (!on_event) return refuse(SubmitError::kInvalid, "no event handler");
  if (req.prompt.empty()) return refuse(SubmitError::kInvalid, "the prompt is empty (no tokens)");
  for (int32_t t : req.prompt) {
    if (t < 0 || t >= n_vocab) return outside_vocab("prompt", t);
  }
  const auto n_prompt = static_cast<int64_t>(req.prompt.size());
  if (n_prompt + 1 > n_ctx) {
    return refuse(SubmitError::kTooLong, "the prompt has " + std::to_string(n_prompt) + " tokens but the context holds " +
                                             std::to_string(n_ctx) + " (at most " + std::to_string(n_ctx - 1) +
                                             " prompt tokens, to leave room for one generated token)");
  }
  Status st = req.sampling.validate();
  if (!st) return refuse(SubmitError::kInvalid, st.message());
  if (req.top_logprobs > kMaxTopLogprobs) {
    return refuse(SubmitError::kInvalid, "top_logprobs must be at most " + std::to_string(kMaxTopLogprobs));
  }
  if (req.prompt_logprobs > kMaxTopLogprobs) {
    return refuse(SubmitError::kInvalid, "prompt_logprobs must be at most " + std::to_string(kMaxTopLogprobs));
  }
  if (!std::isfinite(req.timeout_s) || req.timeout_s < 0.0) {
    return refuse(SubmitError::kInvalid, "timeout must be a finite number of seconds >= 0");
  }
  for (const auto& [t, bias] : req.sampling.logit_bias) {
    if (t < 0 || t >= n_vocab) return outside_vocab("logit_bias", t);
  }
  if (req.grammar != nullptr) {
    std::call_once(trie_once, [this] { trie = std::make_unique<grammar::TokenTrie>(grammar_pieces(tok)); });
  }

  // Built outside the lock; an id taken by a refused request is simply never used.
  const uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
  auto seq = std::make_unique<Sequence>(id, std::move(req), std::move(on_event), tok, SchedClock::now());
  seq->warm = warm;
  if (seq->options().grammar != nullptr) seq->constrain(trie.get());
  {
    std::lock_guard<std::mutex> lk(mu);
    if (stopping) return refuse(SubmitError::kShuttingDown, "the scheduler is shutting down");
    // Requests the next step admits into free running slots are not queued.
    const int64_t free_slots = std::max<int64_t>(0, opts.n_parallel - stats.running);
    if (static_cast<int64_t>(waiting.size()) + 1 - free_slots > opts.max_queue) {
      return refuse(SubmitError::kQueueFull,
                    "the queue is full (" + std::to_string(waiting.size()) + " requests waiting)");
    }
    live.emplace(id, seq.get());
    waiting.push_back(std::move(seq));
    stats.waiting = static_cast<int64_t>(waiting.size());
  }
  cv.notify_one();
  r.id = id;
  return r;
}

void Scheduler::Impl::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lk(mu);
    auto it = live.find(id);
    if (it == live.end()) return;
    it->second->cancel_requested.store(true, std::memory_order_relaxed);
  }
  cv.notify_one();
}

void Scheduler::Impl::stop(bool drain) {
  {
    std::lock_guard<std::mutex> lk(mu);
    stopping = true;
    if (!drain) {
      for (auto& [id, seq] : live) seq->cancel_requested.store(true, std::memory_order_relaxed);
    }
  }
  cv.notify_all();
  // A handler calling stop() cannot wait for its own thread; the loop still winds down.
  if (std::this_thread::get_id() == loop_id) return;
  std::lock_guard<std::mutex> lk(join_mu);
  if (thread.joinable()) thread.join();
  blocks.flush();  // the last blocks published reach the disk
}

void Scheduler::Impl::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu);
      // running is this thread's own; nothing runs and nothing waits: sleep.
      cv.wait(lk, [&] { return stopping || !waiting.empty() || !running.empty() || !unpins.empty(); });
      if (stopping && waiting.empty() && running.empty()) return;
    }
    step();
  }
}

void Scheduler::Impl::step() {
  std::vector<std::vector<int32_t>> to_unpin;
  {
    std::lock_guard<std::mutex> lk(mu);
    to_unpin.swap(unpins);
  }
  for (const auto& t : to_unpin) blocks.unpin(t);  // admit() publishes the stats
  end_cancelled(SchedClock::now());
  admit();
  if (!running.empty() && prepare_step()) run_batch();
}

void Scheduler::Impl::publish_locked() {
  stats.running = static_cast<int64_t>(running.size());
  stats.waiting = static_cast<int64_t>(waiting.size());
  stats.kv_blocks_free = blocks.free_blocks();
  stats.kv_blocks_used = blocks.used_blocks();
  cstats = blocks.stats();
}

std::unique_ptr<Sequence> Scheduler::Impl::take_running(size_t i) {
  std::unique_ptr<Sequence> seq = std::move(running[i]);
  running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
  blocks.release(seq->kv_seq);
  seq->kv_seq = -1;
  seq->n_past = 0;
  return seq;
}

void Scheduler::Impl::finish(std::unique_ptr<Sequence> seq, const StreamEvent& ev) {
  {
    std::lock_guard<std::mutex> lk(mu);
    live.erase(seq->id());
    publish_locked();
  }
  seq->deliver(ev);
}

void Scheduler::Impl::end_cancelled(SchedClock::time_point now) {
  auto why = [now](const Sequence& s) {
    if (s.cancel_requested.load(std::memory_order_relaxed)) return FinishReason::kCancelled;
    if (s.timed_out(now)) return FinishReason::kTimeout;
    return FinishReason::kNone;
  };
  std::vector<std::pair<std::unique_ptr<Sequence>, FinishReason>> ended;
  {
    std::lock_guard<std::mutex> lk(mu);
    for (auto it = waiting.begin(); it != waiting.end();) {
      const FinishReason r = why(**it);
      if (r == FinishReason::kNone) {
        ++it;
        continue;
      }
      ended.emplace_back(std::move(*it), r);
      it = waiting.erase(it);
    }
  }
  for (size_t i = 0; i < running.size();) {
    const FinishReason r = why(*running[i]);
    if (r == FinishReason::kNone) ++i;
    else ended.emplace_back(take_running(i), r);
  }
  for (auto& [seq, r] : ended) {
    const StreamEvent ev = seq->end(r);
    finish(std::move(seq), ev);
  }
}

void Scheduler::Impl::admit() {
  std::vector<std::pair<std::unique_ptr<Sequence>, FinishReason>> refused;
  {
    std::unique_lock<std::mutex> lk(mu);
    while (static_cast<int>(running.size()) < opts.n_parallel && !waiting.empty()) {
      Sequence& head = *waiting.front();
      // Nothing to generate and no prompt to score: no need for the model.
      if (head.options().max_tokens == 0 && head.options().prompt_logprobs < 0) {
        refused.emplace_back(std::move(waiting.front()), FinishReason::kLength);
        waiting.pop_front();
        continue;
      }
      // Disk reads without mu. Only this thread removes or reorders waiting, and the
      // sequence's tokens are this thread's, so head stays the front meanwhile.
      // A sequence scoring its prompt takes from the cache (and the store) only positions
      // already scored: a reused position has no logits row, so its token would go unscored.
      const int64_t limit = head.reuse_limit();
      const std::span<const int32_t> toks(head.tokens());
      lk.unlock();
      blocks.read_through(limit < static_cast<int64_t>(toks.size()) ? toks.first(static_cast<size_t>(limit) + 1) : toks);
      lk.lock();
      // One spare block per running sequence, so they can grow a while before anyone has
      // to be preempted; strict FIFO, so a big request is not starved by small ones.
      const std::optional<BlockManager::Allocation> got =
          blocks.allocate(head.tokens(), static_cast<int64_t>(running.size()), head.n_cached >= 0, limit);
      if (!got) {
        if (!running.empty()) break;
        // Only when pinned prefixes hold the pool (create() makes it hold a full context
        // and a stream never exceeds it); never spin on a request that cannot fit.
        refused.emplace_back(std::move(waiting.front()), FinishReason::kError);
        waiting.pop_front();
        continue;
      }
      head.kv_seq = got->seq;
      head.n_past = got->hit;
      if (head.n_cached < 0) head.n_cached = got->hit;  // first admission: the prompt's cache hit
      running.push_back(std::move(waiting.front()));
      waiting.pop_front();
    }
    publish_locked();
  }
  for (auto& [seq, r] : refused) {
    const StreamEvent ev = seq->end(r, r == FinishReason::kError ? "the KV pool cannot hold this request" : "");
    finish(std::move(seq), ev);
  }
}

// Plans the step and backs every chunk with blocks (local groups first release what
// left their window). When a pool is empty the youngest sequence is preempted: its
// blocks are released and it goes back to the front of the queue keeping its tokens,
// sampler and stream state; readmitted, it recomputes its KV from prompt + generated
// tokens, from the cache where its blocks survived (per-token results do not depend on
// the batch, so its output is unchanged), and carries on. Then the step is planned
// again. The oldest sequence therefore always makes progress: the pools hold at least
// one full context (local ones: one window and a step). Only pins can take that away;
// a lone sequence that still does not fit ends with an error.
bool Scheduler::Impl::prepare_step() {
  for (;;) {
    pending.clear();
    max_chunk.clear();
    int64_t n_scoring = 0;
    for (const auto& s : running) {
      pending.push_back(s->pending());
      n_scoring += s->scoring() ? 1 : 0;
    }
    if (n_scoring > 0) {  // scoring rows are logits rows: bound them (ordinary steps skip this)
      const int64_t cap = std::max<int64_t>(1, kMaxScoreLogitsFloats / n_vocab / n_scoring);
      for (const auto& s : running) max_chunk.push_back(s->scoring() ? cap : 0);
    }
    plan_step(pending, opts.step_tokens, &plan, max_chunk);
    size_t n_backed = 0;  // chunks given their blocks
    for (; n_backed < plan.size(); ++n_backed) {
      const Sequence& s = *running[plan[n_backed].seq];
      if (!blocks.grow(s.kv_seq, s.n_past, s.n_past + plan[n_backed].n_tokens).is_ok()) break;
    }
    if (n_backed == plan.size()) return true;
    if (running.size() == 1) {
      const StreamEvent ev = running[0]->end(FinishReason::kError, "the KV pool cannot hold this request");
      finish(take_running(0), ev);
      return false;
    }
    preempt(running.size() - 1);
  }
}

void Scheduler::Impl::preempt(size_t i) {
  std::unique_ptr<Sequence> seq = take_running(i);
  std::lock_guard<std::mutex> lk(mu);
  waiting.push_front(std::move(seq));
  ++stats.preempted;
  publish_locked();
}

void Scheduler::Impl::run_batch() {
  int64_t n_prefill = 0;
  batch.clear();
  for (const StepChunk& c : plan) {
    const Sequence& s = *running[c.seq];
    // Prompt positions only; a preempted sequence recomputing its prompt counts again.
    n_prefill += std::max<int64_t>(0, std::min(s.n_past + c.n_tokens, s.n_prompt()) - s.n_past);
    // A scoring sequence wants the row of every position before its last prompt token.
    const bool scoring = s.scoring();
    for (int64_t j = 0; j < c.n_tokens; ++j) {
      const int64_t p = s.n_past + j;
      const bool want = (c.want_logits && j + 1 == c.n_tokens) || (scoring && p + 1 < s.n_prompt());
      batch.add(s.tokens()[static_cast<size_t>(p)], static_cast<int32_t>(p), s.kv_seq, want);
    }
  }
  const int64_t n_tok = batch.size();

  const auto t0 = SchedClock::now();
  const Status st = runner->forward(batch, &logits);
  const auto t1 = SchedClock::now();

  // Sample in batch order; finished sequences leave after everyone has been sampled,
  // so indices into running stay valid.
  int64_t n_generated = 0;
  size_t row = 0, tok_i = 0;
  auto next_row = [&] { return logits.data() + row++ * static_cast<size_t>(n_vocab); };
  std::vector<std::pair<size_t, StreamEvent>> finals;
  for (const StepChunk& c : plan) {
    Sequence& s = *running[c.seq];
    const size_t chunk_tok = tok_i;
    tok_i += static_cast<size_t>(c.n_tokens);
    if (!st) {
      finals.emplace_back(c.seq, s.end(FinishReason::kError, "forward pass failed: " + st.message()));
      continue;
    }
    const int64_t n_before = s.n_past;
    // Scoring rows: every wanted row but the chunk's last when that one is for sampling
    // (the last prompt token's row, which scores nothing).
    const int64_t n_rows_scored = c.want_logits ? c.n_tokens - 1 : c.n_tokens;
    for (int64_t j = 0; j < n_rows_scored; ++j) {
      if (batch.want_logits[chunk_tok + static_cast<size_t>(j)]) s.score_row(n_before + j, next_row(), n_vocab);
    }
    s.n_past += c.n_tokens;
    blocks.publish(s.kv_seq, s.tokens(), n_before, s.n_past);
    if (!c.want_logits) continue;
    const float* last_row = next_row();
    if (s.warm) {  // the whole prompt is in the cache: pin it, generate nothing
      blocks.pin(s.tokens());
      finals.emplace_back(c.seq, s.end(FinishReason::kStop));
      continue;
    }
    if (s.options().max_tokens == 0) {  // prompt scored (prompt_logprobs): nothing to generate
      finals.emplace_back(c.seq, s.end(FinishReason::kLength));
      continue;
    }
    const int64_t before = s.n_generated();
    StreamEvent ev;
    const bool send = s.next_token(last_row, n_vocab, n_ctx, t1, &ev);
    n_generated += s.n_generated() - before;
    if (s.finish() != FinishReason::kNone) {
      finals.emplace_back(c.seq, std::move(ev));
    } else if (send) {
      s.deliver(ev);
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu);
    ++stats.steps;
    stats.last_step_tokens = n_tok;
    ++stats.step_tokens_hist[step_bucket(n_tok)];
    stats.step_tokens_sum += n_tok;
    stats.prompt_tokens += n_prefill;
    stats.generated_tokens += n_generated;
    stats.busy_s += std::chrono::duration<double>(t1 - t0).count();
  }
  // Highest index first, so the remaining indices stay valid while removing.
  std::sort(finals.begin(), finals.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::pair<std::unique_ptr<Sequence>, StreamEvent>> done;
  for (auto& [i, ev] : finals) done.emplace_back(take_running(i), std::move(ev));
  for (auto it = done.rbegin(); it != done.rend(); ++it) finish(std::move(it->first), it->second);
}

// --- public interface ---

Scheduler::Scheduler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Scheduler::~Scheduler() {
  if (impl_) stop(false);
}

Result<std::unique_ptr<Scheduler>> Scheduler::create(const Model& model, const tok::Tokenizer& tok,
                                                     SchedulerOptions opts) {
  if (opts.n_parallel < 1 || opts.n_parallel > kMaxParallel) {
    return Status::error("parallel sequences must be in [1, " + std::to_string(kMaxParallel) + "]");
  }
  // Every running sequence gets its decode token each step.
  if (opts.step_tokens < opts.n_parallel) {
    return Status::error("tokens per step (" + std::to_string(opts.step_tokens) + ") must be at least the number of "
                         "parallel sequences (" + std::to_string(opts.n_parallel) + ")");
  }
  if (opts.max_queue < 0) return Status::error("queue size must not be negative");
  Result<std::unique_ptr<Runner>> runner = Runner::create(
      model, {.n_threads = opts.n_threads, .n_ctx = opts.n_ctx, .n_batch = opts.step_tokens, .n_seqs = opts.n_parallel,
              .batch_invariant = opts.batch_invariant, .kv_type = opts.kv_type, .kv_blocks = opts.kv_blocks,
              .kv_mem_bytes = opts.kv_mem_bytes});
  if (!runner) return runner.status();
  if ((*runner)->n_ctx() < 2) return Status::error("context size must be at least 2");
  const KvConfig& kc = (*runner)->kv().config();

  std::unique_ptr<KvStore> store;
  if (!opts.kv_store_dir.empty()) {
    if (opts.kv_store_bytes <= 0) return Status::error("KV store size must be positive");
    // Everything that changes a block's bytes: the weights (sampled fingerprint) and the layout.
    const uint64_t ns = kv_store_namespace(gguf::model_fingerprint(model.file()), kv_layout_description(kc, kv_type_name(kc.type)));
    Result<std::unique_ptr<KvStore>> st = KvStore::open(opts.kv_store_dir, ns, static_cast<uint64_t>(opts.kv_store_bytes));
    if (!st) return st.status();
    store = std::move(st.value());
  }

  auto impl = std::make_unique<Impl>(model, tok, opts, std::move(runner.value()), std::move(store));
  Impl* p = impl.get();
  std::unique_ptr<Scheduler> sched(new Scheduler(std::move(impl)));
  p->thread = std::thread([p] { p->loop(); });
  p->loop_id = p->thread.get_id();
  return sched;
}

SubmitResult Scheduler::submit(RequestOptions req, EventFn on_event) { return impl_->submit(std::move(req), std::move(on_event)); }

void Scheduler::cancel(uint64_t id) { impl_->cancel(id); }

void Scheduler::stop(bool drain) { impl_->stop(drain); }

SubmitResult Scheduler::warm(std::vector<int32_t> tokens, EventFn on_done) {
  RequestOptions r;
  r.prompt = std::move(tokens);
  r.max_tokens = 1;
  r.sampling.temperature = 0.0f;
  return impl_->submit(std::move(r), std::move(on_done), true);
}

void Scheduler::unpin(std::vector<int32_t> tokens) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->unpins.push_back(std::move(tokens));
  }
  impl_->cv.notify_one();
}

CacheStats Scheduler::cache_stats() const {
  CacheStats cs;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    cs = impl_->cstats;
  }
  cs.store = impl_->blocks.store_stats();
  return cs;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->stats;
}

int64_t Scheduler::n_ctx() const { return impl_->n_ctx; }

const Model& Scheduler::model() const { return impl_->model; }

}  // namespace flashlm
