// Prometheus text format: histogram buckets are cumulative with inclusive upper bounds,
// +Inf equals the count, counters by status, gauges from the scheduler's stats.
#include "server/metrics.h"

#include <gtest/gtest.h>

namespace flashlm::server {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(MetricsTest, HistogramIsCumulative) {
  Histogram h({0.1, 1.0});
  for (double v : {0.05, 0.1, 0.5, 2.0, 3.0}) h.observe(v);
  std::string out;
  h.render("x_seconds", "help text", &out);
  EXPECT_TRUE(has_line(out, "# TYPE x_seconds histogram")) << out;
  EXPECT_TRUE(has_line(out, "x_seconds_bucket{le=\"0.1\"} 2")) << out;  // 0.1 is inclusive
  EXPECT_TRUE(has_line(out, "x_seconds_bucket{le=\"1\"} 3")) << out;
  EXPECT_TRUE(has_line(out, "x_seconds_bucket{le=\"+Inf\"} 5")) << out;
  EXPECT_TRUE(has_line(out, "x_seconds_sum 5.65")) << out;
  EXPECT_TRUE(has_line(out, "x_seconds_count 5")) << out;
}

TEST(MetricsTest, RenderHasEveryFamily) {
  Metrics m;
  m.count_request(200);
  m.count_request(200);
  m.count_request(429);
  m.observe_ttft(0.2);
  m.observe_inter_token(0.01);
  SchedulerStats s;
  s.running = 3;
  s.waiting = 2;
  s.kv_blocks_used = 10;
  s.kv_blocks_free = 90;
  s.steps = 4;
  s.prompt_tokens = 30;
  s.generated_tokens = 10;
  s.last_step_tokens = 7;
  s.step_tokens_hist[0] = 3;  // three 1-token steps
  s.step_tokens_hist[5] = 1;  // one step of 17..32 tokens
  s.step_tokens_sum = 30;
  m.sample(s, 0.0);
  s.generated_tokens = 30;
  m.sample(s, 2.0);
  EXPECT_DOUBLE_EQ(m.generated_tokens_per_second(), 10.0);
  const std::string out = m.render(&s, true);
  for (const char* line :
       {"flashlm_requests_total{status=\"200\"} 2", "flashlm_requests_total{status=\"429\"} 1",
        "flashlm_time_to_first_token_seconds_count 1", "flashlm_inter_token_latency_seconds_count 1",
        "flashlm_prompt_tokens_total 30", "flashlm_generated_tokens_total 30", "flashlm_running_sequences 3",
        "flashlm_waiting_sequences 2", "flashlm_kv_blocks_used 10", "flashlm_kv_blocks_free 90",
        "flashlm_batch_tokens_last_step 7", "flashlm_batch_tokens_mean 15", "flashlm_generated_tokens_per_second 10",
        "flashlm_model_ready 1", "flashlm_step_tokens_bucket{le=\"1\"} 3",
        "flashlm_step_tokens_bucket{le=\"16\"} 3", "flashlm_step_tokens_bucket{le=\"32\"} 4",
        "flashlm_step_tokens_bucket{le=\"+Inf\"} 4", "flashlm_step_tokens_sum 30", "flashlm_step_tokens_count 4"}) {
    EXPECT_TRUE(has_line(out, line)) << line << "\n" << out;
  }
  // Every sample line belongs to a family declared with # TYPE.
  size_t pos = 0;
  while (pos < out.size()) {
    const size_t end = out.find('\n', pos);
    const std::string line = out.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string sfx = suffix;
      if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0 &&
          out.find("# TYPE " + name + " ") == std::string::npos) {
        name = name.substr(0, name.size() - sfx.size());
      }
    }
    EXPECT_NE(out.find("# TYPE " + name + " "), std::string::npos) << line;
  }
}

TEST(MetricsTest, LoadingRendersZeros) {
  Metrics m;
  const std::string out = m.render(nullptr, false);
  EXPECT_TRUE(has_line(out, "flashlm_model_ready 0"));
  EXPECT_TRUE(has_line(out, "flashlm_running_sequences 0"));
}

}  // namespace
}  // namespace flashlm::server
