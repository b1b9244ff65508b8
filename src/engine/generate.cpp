#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

namespace flashlm {

Status generate(Scheduler& sched, RequestOptions req, const std::function<bool(std::string_view)>& on_text,
                GenerateStats* stats) {
  using Clock = std::chrono::steady_clock;
  // Events arrive on the scheduler thread; on_text runs here, so it may block or cancel.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<StreamEvent> events;
  Clock::time_point t_end;
  const Clock::time_point t0 = Clock::now();
  const SubmitResult r = sched.submit(std::move(req), [&](const StreamEvent& ev) {
    std::lock_guard<std::mutex> lk(mu);
    if (ev.finish != FinishReason::kNone) t_end = Clock::now();
    events.push_back(ev);
    cv.notify_one();
  });
  if (r.error != SubmitError::kNone) return Status::error(r.message);
  *stats = GenerateStats{};
  for (bool cancelled = false;;) {
    StreamEvent ev;
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return !events.empty(); });
      ev = std::move(events.front());
      events.pop_front();
    }
    for (const TokenInfo& t : ev.tokens) stats->generated.push_back(t.token);
    if (!cancelled && !ev.text.empty() && !on_text(ev.text)) {
      cancelled = true;
      sched.cancel(r.id);
    }
    if (ev.finish == FinishReason::kNone) continue;
    if (ev.finish == FinishReason::kError) return Status::error(ev.error);
    stats->n_prompt = ev.n_prompt - ev.n_cached;
    stats->n_cached = ev.n_cached;
    stats->n_generated = ev.n_generated;
    stats->prompt_ms = std::max(0.0, ev.ttft_ms);
    stats->gen_ms = std::chrono::duration<double, std::milli>(t_end - t0).count() - stats->prompt_ms;
    stats->finish_reason = finish_reason_name(ev.finish);
    return Status::ok();
  }
}

}  // namespace flashlm
