#include "engine/step_plan.h"

#include <algorithm>

namespace flashlm {

int64_t plan_step(std::span<const int64_t> pending, int64_t budget, std::vector<StepChunk>* out,
                  std::span<const int64_t> max_chunk) {
  out->clear();
  int64_t used = 0;
  for (size_t i = 0; i < pending.size() && used < budget; ++i) {
    if (pending[i] != 1) continue;
    out->push_back({i, 1, true});
    ++used;
  }
  // Oldest first: the request that has waited longest gets its first token soonest,
  // instead of every prompt advancing slowly at once.
  for (size_t i = 0; i < pending.size() && used < budget; ++i) {
    if (pending[i] <= 1) continue;
    int64_t n = std::min(pending[i], budget - used);
    if (i < max_chunk.size() && max_chunk[i] > 0) n = std::min(n, max_chunk[i]);
    out->push_back({i, n, n == pending[i]});
    used += n;
  }
  return used;
}

}  // namespace flashlm
