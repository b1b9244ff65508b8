// A Backend without a model, for server tests: one token per byte, and a generator
// thread that emits `piece` per token every `tick`, honouring max_tokens, cancel(),
// the queue bound and stop(drain) as the Scheduler promises to.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "server/backend.h"

namespace flashlm::server::testing {

struct FakeOptions {
  int tokens = 5;            // generated when max_tokens does not cut earlier ("stop")
  std::string piece = "ab";  // text of each generated token
  std::chrono::microseconds tick{200};
  int parallel = 4;
  int max_queue = 64;
  int64_t n_ctx = 64;
};

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(FakeOptions o = {}) : o_(std::move(o)), thread_([this] { loop(); }) {}
  ~FakeBackend() override { stop(false); }

  const std::string& model_id() const override { return id_; }
  int64_t n_ctx() const override { return o_.n_ctx; }
  int32_t n_vocab() const override { return 256; }

  std::vector<int32_t> tokenize(std::string_view text, bool, bool) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  Result<std::vector<int32_t>> chat_tokens(const nlohmann::ordered_json& messages,
                                           const nlohmann::ordered_json& /*tools*/) const override {
    std::string text;
    for (const auto& m : messages) {
      if (m["content"] == "RAISE") return Status::error("template error: roles must alternate");
      if (m["content"] == "SLOW") std::this_thread::sleep_for(std::chrono::seconds(1));  // a huge prompt
      text += m["role"].get<std::string>() + ":" + m["content"].get<std::string>() + "\n";
    }
    return tokenize(text, true, true);
  }
  std::string detokenize(const std::vector<int32_t>& tokens) const override {
    std::string s;
    for (int32_t t : tokens) s.push_back(static_cast<char>(t));
    return s;
  }
  std::string token_piece(int32_t token) const override { return std::string(1, static_cast<char>(token)); }
  std::string eos_text() const override { return "</s>"; }

  SubmitResult submit(RequestOptions req, EventFn fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    SubmitResult r;
    if (stopping_) {
      r.error = SubmitError::kShuttingDown;
      r.message = "stopping";
    } else if (static_cast<int64_t>(req.prompt.size()) >= o_.n_ctx) {
      r.error = SubmitError::kTooLong;
      r.message = "prompt too long";
    } else if (static_cast<int>(reqs_.size()) >= o_.parallel + o_.max_queue) {
      r.error = SubmitError::kQueueFull;
      r.message = "queue full";
    } else {
      r.id = ++next_id_;
      reqs_.push_back(Req{r.id, std::move(req), std::move(fn)});
      ++submitted;
      last_request_ = reqs_.back().opts;
    }
    return r;
  }
  void cancel(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (Req& r : reqs_) {
      if (r.id == id) r.cancelled = true;
    }
  }
  void stop(bool drain) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      if (!drain) {
        for (Req& r : reqs_) r.cancelled = true;
      }
      exit_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }
  SchedulerStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    SchedulerStats s;
    s.running = std::min<int64_t>(static_cast<int64_t>(reqs_.size()), o_.parallel);
    s.waiting = static_cast<int64_t>(reqs_.size()) - s.running;
    s.generated_tokens = generated_;
    return s;
  }

  std::atomic<int> submitted{0}, cancelled{0}, finished{0};
  RequestOptions last_request() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }

 private:
  struct Req {
    uint64_t id;
    RequestOptions opts;
    EventFn fn;
    int64_t n = 0;
    bool cancelled = false;
  };

  void loop() {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (exit_ && reqs_.empty()) return;
        size_t running = std::min(reqs_.size(), static_cast<size_t>(o_.parallel));
        for (size_t i = 0; i < running;) {
          if (step(reqs_[i])) {
            reqs_.erase(reqs_.begin() + static_cast<long>(i));
            --running;
          } else {
            ++i;
          }
        }
      }
      std::this_thread::sleep_for(o_.tick);
    }
  }

  // One token for r; true when r has finished.
  bool step(Req& r) {
    StreamEvent ev;
    ev.n_prompt = static_cast<int64_t>(r.opts.prompt.size());
    if (r.cancelled) {
      ev.finish = FinishReason::kCancelled;
      ev.n_generated = r.n;
      r.fn(ev);
      ++cancelled;
      return true;
    }
    // Prompt scoring (echo): every prompt token after the first at -1 - position/10,
    // alternatives 'a', 'b', ..., all with the first event; max_tokens 0 ends there.
    if (r.opts.prompt_logprobs >= 0 && r.n == 0) {
      for (size_t i = 1; i < r.opts.prompt.size(); ++i) {
        TokenInfo p;
        p.token = r.opts.prompt[i];
        p.logprobs.chosen = -1.0f - static_cast<float>(i) / 10.0f;
        for (int j = 0; j < r.opts.prompt_logprobs; ++j) p.logprobs.top.push_back({'a' + j, -0.5f - static_cast<float>(j)});
        ev.prompt_tokens.push_back(p);
      }
    }
    if (r.opts.max_tokens == 0) {
      ev.finish = FinishReason::kLength;
      r.fn(ev);
      ++finished;
      return true;
    }
    ++r.n;
    ++generated_;
    TokenInfo t;
    t.token = static_cast<unsigned char>(o_.piece[0]);
    if (r.opts.top_logprobs >= 0) {
      t.logprobs.chosen = -0.5f;
      for (int j = 0; j < r.opts.top_logprobs; ++j) t.logprobs.top.push_back({'a' + j, -0.5f - static_cast<float>(j)});
    }
    ev.tokens.push_back(t);
    ev.text = o_.piece;
    ev.n_generated = r.n;
    const bool by_length = r.opts.max_tokens > 0 && r.n >= r.opts.max_tokens;
    if (by_length || r.n >= o_.tokens) ev.finish = by_length ? FinishReason::kLength : FinishReason::kStop;
    r.fn(ev);
    if (ev.finish != FinishReason::kNone) ++finished;
    return ev.finish != FinishReason::kNone;
  }

  FakeOptions o_;
  std::string id_ = "fake-model";
  mutable std::mutex mu_;
  std::deque<Req> reqs_;
  RequestOptions last_request_;
  uint64_t next_id_ = 0;
  int64_t generated_ = 0;
  bool stopping_ = false, exit_ = false;
  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace flashlm::server::testing
