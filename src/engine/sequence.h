// One request inside the Scheduler: its options, its own sampling and streaming state
// (Sampler, StreamDecoder, StopMatcher: the one place generation samples, stops and
// detokenizes, for every command) and where it stands in the KV cache. Touched only by the scheduler thread, except
// cancel_requested, which cancel() and stop() set from other threads.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/scheduler.h"
#include "grammar/matcher.h"
#include "sampling/sampler.h"
#include "sampling/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace flashlm {

using SchedClock = std::chrono::steady_clock;

class Sequence {
 public:
  // opts must already be validated (Scheduler::submit). The prompt enters the sampler's
  // penalty history.
  Sequence(uint64_t id, RequestOptions opts, EventFn on_event, const tok::Tokenizer& tok, SchedClock::time_point now);

  uint64_t id() const { return id_; }
  const RequestOptions& options() const { return opts_; }
  bool timed_out(SchedClock::time_point now) const { return now >= deadline_; }

  // Token stream: the prompt, then every generated token. KV holds tokens[0, n_past);
  // the rest are pending. Right after a sample exactly one token is pending (the next
  // decode token); after admission, or readmission after preemption, all of them are.
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t pending() const { return static_cast<int64_t>(tokens_.size()) - n_past; }
  int64_t n_past = 0;
  int kv_seq = -1;  // KV sequence slot while running, -1 while waiting
  int64_t n_cached = -1;  // prompt tokens reused from the prefix cache at first admission; -1 before
  bool warm = false;      // Scheduler::warm(): compute the prompt and pin it, generate nothing

  std::atomic<bool> cancel_requested{false};

  // With RequestOptions::grammar: sampling is constrained from now on (the scheduler
  // passes the vocabulary trie it shares between requests).
  void constrain(const grammar::TokenTrie* trie);

  // Prompt scoring (RequestOptions::prompt_logprobs >= 0). The logits row of position p
  // scores prompt token p + 1; scoring() is true while some prompt token is unscored,
  // and then every prompt position's row is wanted. Once tokens 1..n are scored, the
  // prefix cache may supply at most n leading positions (the rows from n on must run):
  // reuse_limit().
  bool scoring() const { return opts_.prompt_logprobs >= 0 && n_scored_ + 1 < n_prompt_; }
  int64_t reuse_limit() const;
  // The logits row of position pos: scores prompt token pos + 1 if it is the next one
  // unscored (recomputed rows after a preemption are skipped). Keeps the token's logprob
  // and prompt_logprobs alternatives, not the row.
  void score_row(int64_t pos, const float* logits, int32_t n_vocab);

  // Samples the next token from one logits row and streams it: EOS (unless ignore_eos),
  // a stop string, max_tokens, or a full context (no position left for the token: n_past
  // >= n_ctx) finish the request. Returns true when *ev should be delivered: new text, or
  // the finish. Tokens whose text is still held back (incomplete UTF-8, a possible stop
  // string) travel with the next event.
  bool next_token(const float* logits, int32_t n_vocab, int64_t n_ctx, SchedClock::time_point now, StreamEvent* ev);

  // The final event of a request ended from outside (cancel, timeout, error, max_tokens
  // of 0). Held-back text is dropped; unsent tokens are included.
  StreamEvent end(FinishReason why, std::string error = {});

  FinishReason finish() const { return finish_; }
  int64_t n_prompt() const { return n_prompt_; }
  int64_t n_generated() const { return n_generated_; }

  // Delivers an event to the request's handler. A handler that throws cancels its
  // request instead of taking the scheduler thread down.
  void deliver(const StreamEvent& ev);

 private:
  // An event with this text and error, finish_, the tokens sampled since the last event,
  // the usage, and on the first event the scored prompt tokens.
  StreamEvent event(std::string text, std::string error);
  // Samples a token the grammar allows: the sampler's own pick when the grammar takes it
  // (most steps), else a second draw from the logits with every disallowed token masked
  // (the distribution is the same as masking first: accepted picks keep their odds, and a
  // rejection redraws from the allowed ones). -1 when the grammar allows nothing.
  int32_t sample_constrained(const float* logits, int32_t n_vocab, TokenInfo* info);
  bool grammar_allows(int32_t token) const;
  int32_t sample(const float* logits, int32_t n_vocab, TokenInfo* info);

  uint64_t id_;
  RequestOptions opts_;  // opts_.prompt is moved into tokens_
  EventFn on_event_;
  const tok::Tokenizer* tok_;
  SchedClock::time_point t_submit_;
  SchedClock::time_point deadline_;  // time_point::max() without a timeout

  std::vector<int32_t> tokens_;
  int64_t n_prompt_ = 0;
  Sampler sampler_;
  tok::StreamDecoder decoder_;
  StopMatcher stops_;
  std::vector<TokenInfo> unsent_;  // sampled since the last event
  std::vector<TokenInfo> scored_;  // prompt tokens 1..n_scored_, until the first event takes them
  int64_t n_scored_ = 0;
  bool prompt_sent_ = false;
  int64_t n_generated_ = 0;
  double ttft_ms_ = -1.0;
  FinishReason finish_ = FinishReason::kNone;

  std::unique_ptr<grammar::Matcher> matcher_;  // with a grammar
  const grammar::TokenTrie* trie_ = nullptr;
  std::vector<uint8_t> mask_;   // sample_constrained()'s scratch, kept for its capacity
  std::vector<float> masked_;
};

}  // namespace flashlm
