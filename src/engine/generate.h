// Synchronous generation: one request submitted to the Scheduler (the one engine every
// generating command uses) and waited for. `flashlm run` is one such call; `flashlm chat` one per turn, its earlier turns
// found again by the prefix cache.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/scheduler.h"

namespace flashlm {

struct GenerateStats {
  int64_t n_prompt = 0;    // prompt tokens computed (those reused from the prefix cache excluded)
  int64_t n_cached = 0;    // prompt tokens whose KV was reused
  int64_t n_generated = 0;
  double prompt_ms = 0.0;  // submit to first token
  double gen_ms = 0.0;     // first token to finish
  std::string finish_reason;       // finish_reason_name(): "stop", "length", ...
  std::vector<int32_t> generated;  // sampled token ids
};

// Runs req to its finish. on_text receives valid UTF-8 pieces, on the scheduler thread
// (so it must be short and must not call back into the scheduler). A refused request or
// a failed one is an error.
Status generate(Scheduler& sched, RequestOptions req, const std::function<void(std::string_view)>& on_text,
                GenerateStats* stats);

}  // namespace flashlm
