#include "engine/sequence.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace flashlm {
namespace {

// Timeouts beyond this (about 30 years) are "none": converting them to clock ticks
// would overflow.
constexpr double kMaxTimeoutS = 1e9;

SchedClock::time_point deadline_for(SchedClock::time_point now, double timeout_s) {
  if (!(timeout_s > 0.0) || timeout_s > kMaxTimeoutS) return SchedClock::time_point::max();
  return now + std::chrono::duration_cast<SchedClock::duration>(std::chrono::duration<double>(timeout_s));
}

}  // namespace

Sequence::Sequence(uint64_t id, RequestOptions opts, EventFn on_event, const tok::Tokenizer& tok,
                   SchedClock::time_point now)
    : id_(id),
      opts_(std::move(opts)),
      on_event_(std::move(on_event)),
      tok_(&tok),
      t_submit_(now),
      deadline_(deadline_for(now, opts_.timeout_s)),
      tokens_(std::move(opts_.prompt)),
      n_prompt_(static_cast<int64_t>(tokens_.size())),
      sampler_(opts_.sampling),
      decoder_(tok),
      stops_(opts_.stop) {
  opts_.prompt.clear();
  for (int32_t t : tokens_) sampler_.accept(t);
}

int64_t Sequence::reuse_limit() const {
  return scoring() ? n_scored_ : static_cast<int64_t>(tokens_.size());
}

void Sequence::score_row(int64_t pos, const float* logits, int32_t n_vocab) {
  if (pos != n_scored_ || !scoring()) return;
  TokenInfo info;
  info.token = tokens_[static_cast<size_t>(pos + 1)];
  Sampler::score(logits, n_vocab, info.token, opts_.prompt_logprobs, &info.logprobs);
  scored_.push_back(std::move(info));
  ++n_scored_;
}

StreamEvent Sequence::event(std::string text, std::string error) {
  StreamEvent ev;
  ev.text = std::move(text);
  ev.tokens = std::exchange(unsent_, {});
  ev.finish = finish_;
  ev.error = std::move(error);
  ev.n_prompt = n_prompt_;
  ev.n_generated = n_generated_;
  ev.n_cached = std::max<int64_t>(0, n_cached);
  ev.ttft_ms = ttft_ms_;
  if (!prompt_sent_ && opts_.prompt_logprobs >= 0) {
    prompt_sent_ = true;
    ev.prompt_tokens = std::exchange(scored_, {});
  }
  return ev;
}

void Sequence::constrain(const grammar::TokenTrie* trie) {
  trie_ = trie;
  matcher_ = std::make_unique<grammar::Matcher>(opts_.grammar);
}

int32_t Sequence::sample(const float* logits, int32_t n_vocab, TokenInfo* info) {
  return opts_.top_logprobs >= 0 ? sampler_.sample(logits, n_vocab, opts_.top_logprobs, &info->logprobs)
                                 : sampler_.sample(logits, n_vocab);
}

bool Sequence::grammar_allows(int32_t token) const {
  if (tok_->is_eog(token)) return matcher_->accepting();
  if (tok_->is_control(token)) return false;
  const std::string piece = tok_->token_to_piece(token);
  return !piece.empty() && matcher_->can_accept(piece);
}

int32_t Sequence::sample_constrained(const float* logits, int32_t n_vocab, TokenInfo* info) {
  const int32_t first = sample(logits, n_vocab, info);
  if (first >= 0 && first < tok_->n_vocab() && grammar_allows(first)) return first;
  matcher_->fill_mask(*trie_, &mask_);
  const bool end_ok = matcher_->accepting();
  masked_.assign(logits, logits + n_vocab);
  bool any = false;
  for (int32_t id = 0; id < n_vocab; ++id) {
    const bool ok = id < tok_->n_vocab() && (mask_[static_cast<size_t>(id)] != 0 || (end_ok && tok_->is_eog(id)));
    if (ok) any = true;
    else masked_[static_cast<size_t>(id)] = -std::numeric_limits<float>::infinity();
  }
  if (!any) return -1;
  const int32_t token = sample(masked_.data(), n_vocab, info);
  return grammar_allows(token) ? token : -1;
}

bool Sequence::next_token(const float* logits, int32_t n_vocab, int64_t n_ctx, SchedClock::time_point now,
                          StreamEvent* ev) {
  TokenInfo info;
  if (matcher_ != nullptr) {
    info.token = sample_constrained(logits, n_vocab, &info);
    if (info.token < 0) {
      *ev = end(FinishReason::kError, matcher_->failed() ? "the grammar is too ambiguous to follow (too many parses at once)"
                                                         : "no token of the vocabulary can continue the grammar");
      return true;
    }
    if (!tok_->is_eog(info.token)) matcher_->accept(tok_->token_to_piece(info.token));
  } else {
    info.token = sample(logits, n_vocab, &info);
  }
  sampler_.accept(info.token);
  if (ttft_ms_ < 0.0) ttft_ms_ = std::chrono::duration<double, std::milli>(now - t_submit_).count();

  // Order of checks: EOS, stop string, context full, max_tokens.
  std::string text;
  if (!opts_.ignore_eos && tok_->is_eog(info.token)) {
    finish_ = FinishReason::kStop;  // the end-of-generation token is not output
  } else {
    tokens_.push_back(info.token);
    ++n_generated_;
    unsent_.push_back(std::move(info));
    StopMatcher::Out out = stops_.feed(decoder_.push(tokens_.back()));
    text = std::move(out.emit);
    if (out.stopped || (matcher_ != nullptr && !matcher_->can_continue())) {
      finish_ = FinishReason::kStop;  // a stop string, or the grammar is complete
    } else if (n_past >= n_ctx || (opts_.max_tokens >= 0 && n_generated_ >= opts_.max_tokens)) {
      finish_ = FinishReason::kLength;
    }
  }
  if (finish_ != FinishReason::kNone && !stops_.stopped()) {
    text += stops_.feed(decoder_.flush()).emit;
    text += stops_.flush();
  }
  if (text.empty() && finish_ == FinishReason::kNone) return false;
  *ev = event(std::move(text), {});
  return true;
}

StreamEvent Sequence::end(FinishReason why, std::string error) {
  finish_ = why;
  return event({}, std::move(error));
}

void Sequence::deliver(const StreamEvent& ev) {
  if (!on_event_) return;
  try {
    on_event_(ev);
  } catch (...) {
    cancel_requested.store(true, std::memory_order_relaxed);
  }
}

}  // namespace flashlm
