#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace flashlm {

Status generate(Scheduler& sched, RequestOptions req, const std::function<void(std::string_view)>& on_text,
                GenerateStats* stats) {
  using Clock = std::chrono::steady_clock;
  *stats = GenerateStats{};
  std::mutex mu;
  std::condition_variable cv;
  StreamEvent last;  // the final event, once last.finish is set
  Clock::time_point t_end;
  const Clock::time_point t0 = Clock::now();
  // Runs on the scheduler thread; this thread reads stats only after the final event.
  const SubmitResult r = sched.submit(std::move(req), [&](const StreamEvent& ev) {
    if (!ev.text.empty()) on_text(ev.text);
    for (const TokenInfo& t : ev.tokens) stats->generated.push_back(t.token);
    if (ev.finish == FinishReason::kNone) return;
    std::lock_guard<std::mutex> lk(mu);
    t_end = Clock::now();
    last = ev;
    cv.notify_one();
  });
  if (r.error != SubmitError::kNone) return Status::error(r.message);
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return last.finish != FinishReason::kNone; });
  if (last.finish == FinishReason::kError) return Status::error(last.error);
  stats->n_prompt = last.n_prompt - last.n_cached;
  stats->n_cached = last.n_cached;
  stats->n_generated = last.n_generated;
  stats->prompt_ms = std::max(0.0, last.ttft_ms);
  stats->gen_ms = std::chrono::duration<double, std::milli>(t_end - t0).count() - stats->prompt_ms;
  stats->finish_reason = finish_reason_name(last.finish);
  return Status::ok();
}

}  // namespace flashlm
