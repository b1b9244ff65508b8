#include "server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace flashlm::server {
namespace {

constexpr double kRateWindowS = 10.0;

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

void metric(std::string* out, const char* name, const char* type, const char* help, double value) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
          num(value) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[i];  // le is inclusive: v == bound lands in that bound's bucket
  sum_ += v;
  ++count_;
}

void Histogram::render(const std::string& name, const std::string& help, std::string* out) const {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    *out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  *out += name + "_sum " + num(sum_) + "\n";
  *out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}),
      duration_({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}) {}

void Metrics::sample(const SchedulerStats& s, double now_s) {
  samples_.push_back({now_s, s.generated_tokens, s.prompt_tokens});
  while (samples_.size() > 2 && now_s - samples_.front().t > kRateWindowS) samples_.pop_front();
}

double Metrics::generated_tokens_per_second() const {
  if (samples_.size() < 2) return 0.0;
  const double dt = samples_.back().t - samples_.front().t;
  if (dt <= 0.0) return 0.0;
  return static_cast<double>(samples_.back().generated - samples_.front().generated) / dt;
}

int64_t Metrics::requests_with_status(int status) const {
  auto it = requests_.find(status);
  return it == requests_.end() ? 0 : it->second;
}

std::string Metrics::render(const SchedulerStats* stats, bool ready, const CacheStats* cache) const {
  std::string out;
  out += "# HELP flashlm_requests_total HTTP requests answered, by status code.\n";
  out += "# TYPE flashlm_requests_total counter\n";
  for (const auto& [status, n] : requests_) {
    out += "flashlm_requests_total{status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  metric(&out, "flashlm_requests_cancelled_total", "counter",
         "Requests cancelled because the client went away or read too slowly.", static_cast<double>(cancelled_));
  ttft_.render("flashlm_time_to_first_token_seconds", "Time from submission to the first generated token.", &out);
  itl_.render("flashlm_inter_token_latency_seconds", "Time between consecutive generated tokens of a request.", &out);
  duration_.render("flashlm_request_duration_seconds", "Time from submission to the end of generation.", &out);
  metric(&out, "flashlm_model_ready", "gauge", "1 when the model is loaded and serving.", ready ? 1 : 0);
  metric(&out, "flashlm_http_connections", "gauge", "Open HTTP connections.", static_cast<double>(connections_));
  const SchedulerStats zero;
  const SchedulerStats& s = stats != nullptr ? *stats : zero;
  metric(&out, "flashlm_prompt_tokens_total", "counter", "Prompt tokens processed.",
         static_cast<double>(s.prompt_tokens));
  metric(&out, "flashlm_generated_tokens_total", "counter", "Tokens generated.",
         static_cast<double>(s.generated_tokens));
  metric(&out, "flashlm_running_sequences", "gauge", "Sequences being generated.", static_cast<double>(s.running));
  metric(&out, "flashlm_waiting_sequences", "gauge", "Requests queued for a slot.", static_cast<double>(s.waiting));
  metric(&out, "flashlm_kv_blocks_used", "gauge", "KV cache blocks in use.", static_cast<double>(s.kv_blocks_used));
  metric(&out, "flashlm_kv_blocks_free", "gauge", "KV cache blocks free.", static_cast<double>(s.kv_blocks_free));
  metric(&out, "flashlm_steps_total", "counter", "Scheduler steps (forward passes).", static_cast<double>(s.steps));
  metric(&out, "flashlm_batch_tokens_last_step", "gauge", "Tokens in the most recent forward pass.",
         static_cast<double>(s.last_step_tokens));
  const double mean_batch =
      s.steps > 0 ? static_cast<double>(s.prompt_tokens + s.generated_tokens) / static_cast<double>(s.steps) : 0.0;
  metric(&out, "flashlm_batch_tokens_mean", "gauge", "Mean tokens per forward pass since start.", mean_batch);
  // Tokens per step as a Prometheus histogram (the scheduler counts per bucket).
  out += "# HELP flashlm_step_tokens Tokens in each forward pass (decode tokens plus prefill chunks).\n";
  out += "# TYPE flashlm_step_tokens histogram\n";
  int64_t cumulative = 0;
  for (size_t i = 0; i < kStepTokenBucketCount; ++i) {
    cumulative += s.step_tokens_hist[i];
    const std::string le = i + 1 < kStepTokenBucketCount ? std::to_string(kStepTokenBuckets[i]) : "+Inf";
    out += "flashlm_step_tokens_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += "flashlm_step_tokens_sum " + std::to_string(s.step_tokens_sum) + "\n";
  out += "flashlm_step_tokens_count " + std::to_string(cumulative) + "\n";
  metric(&out, "flashlm_busy_seconds_total", "counter", "Time spent in forward passes.", s.busy_s);
  metric(&out, "flashlm_generated_tokens_per_second", "gauge", "Generation throughput over the last 10 seconds.",
         generated_tokens_per_second());
  const CacheStats no_cache;
  const CacheStats& c = cache != nullptr ? *cache : no_cache;
  metric(&out, "flashlm_prefix_cache_hit_tokens_total", "counter",
         "Prompt tokens whose KV was reused from the prefix cache.", static_cast<double>(c.hit_tokens));
  metric(&out, "flashlm_prefix_cache_miss_tokens_total", "counter", "Prompt tokens not found in the prefix cache.",
         static_cast<double>(c.miss_tokens));
  metric(&out, "flashlm_prefix_cache_blocks_cached", "gauge", "Unreferenced KV blocks kept for reuse.",
         static_cast<double>(c.blocks_cached));
  metric(&out, "flashlm_prefix_cache_blocks_pinned", "gauge", "KV blocks pinned by /v1/cache/warm.",
         static_cast<double>(c.blocks_pinned));
  metric(&out, "flashlm_kv_bytes_used", "gauge", "Bytes of KV blocks in use.", static_cast<double>(c.bytes_used));
  metric(&out, "flashlm_kv_bytes_cached", "gauge", "Bytes of cached (reusable) KV blocks.",
         static_cast<double>(c.bytes_cached));
  metric(&out, "flashlm_kv_bytes_total", "gauge", "Bytes of all KV pools.", static_cast<double>(c.bytes_total));
  if (c.store_enabled) {
    metric(&out, "flashlm_kv_store_blocks", "gauge", "KV blocks in the on-disk store.", static_cast<double>(c.store.blocks));
    metric(&out, "flashlm_kv_store_bytes", "gauge", "Bytes of the on-disk KV store.", static_cast<double>(c.store.bytes));
    metric(&out, "flashlm_kv_store_blocks_loaded_total", "counter", "KV blocks loaded from disk into memory.",
           static_cast<double>(c.store_blocks_loaded));
    metric(&out, "flashlm_kv_store_writes_total", "counter", "KV blocks written to disk.",
           static_cast<double>(c.store.writes));
    metric(&out, "flashlm_kv_store_corrupt_total", "counter", "Bad store files found and removed.",
           static_cast<double>(c.store.corrupt));
  }
  return out;
}

}  // namespace flashlm::server
