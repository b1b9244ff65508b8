// How a batch's attention is cut into work items for the thread pool. A batch mixes
// sequences: decode tokens of many and prompt chunks of some. Rows that continue the
// previous row's sequence at the next position form a run (a prompt chunk; a decode
// token is a run of one); runs are cut into tiles of queries, and each (tile, KV head)
// is one item, so the kernel loads each key/value row once for all query heads of the
// group and all queries of the tile.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"  // AttentionWork
#include "models/batch.h"

namespace flashlm {

struct AttentionPlanParams {
  int n_head = 0;
  int n_head_kv = 0;
  int64_t window = 0;    // sliding window (0: none), for the costs
  int max_rows = 32;     // queries x heads per item, at most (kernel tile height)
  int min_items = 1;     // split query heads (down to one per item) until there are this many
};

// Fills *work (cleared first; its capacity is reused), largest cost first.
void plan_attention(const Batch& batch, const AttentionPlanParams& p, std::vector<AttentionWork>* work);

}  // namespace flashlm
