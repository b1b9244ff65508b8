// Server metrics in Prometheus' text exposition format (version 0.0.4): request counts
// by status, latency histograms, token counters and the scheduler's gauges.
//
// Not thread-safe: the server updates and renders it on its I/O thread only (scheduler
// events reach that thread by asio::post).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "engine/scheduler.h"

namespace flashlm::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);  // upper bounds, increasing; +Inf is implied
  void observe(double v);
  // "# HELP", "# TYPE", cumulative _bucket{le=...} lines, _sum and _count.
  void render(const std::string& name, const std::string& help, std::string* out) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last: above every bound
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  void count_request(int status) { ++requests_[status]; }
  void count_cancelled() { ++cancelled_; }
  void observe_ttft(double seconds) { ttft_.observe(seconds); }
  void observe_inter_token(double seconds) { itl_.observe(seconds); }
  void observe_request(double seconds) { duration_.observe(seconds); }
  void set_connections(int64_t n) { connections_ = n; }

  // Called about once a second with the scheduler's counters; keeps the last ~10 s to
  // turn cumulative token counts into rates.
  void sample(const SchedulerStats& s, double now_s);

  // stats, cache: null while the model loads. ready: 1 when the model serves.
  std::string render(const SchedulerStats* stats, bool ready, const CacheStats* cache = nullptr) const;

  int64_t requests_with_status(int status) const;
  // Generated tokens per second over the sampled window (0 with fewer than 2 samples).
  double generated_tokens_per_second() const;

 private:
  struct Sample {
    double t;
    int64_t generated, prompt;
  };
  std::map<int, int64_t> requests_;
  Histogram ttft_, itl_, duration_;
  int64_t connections_ = 0;
  int64_t cancelled_ = 0;
  std::deque<Sample> samples_;
};

}  // namespace flashlm::server
