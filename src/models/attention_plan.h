// How a batch's attention is cut into work items for the thread pool. A batch mixes
// sequences: decode tokens of many and prompt chunks of some. Rows that continue the
// previous row's sequence at the next position form a run (a prompt chunk; a decode
// token is a run of one); runs are cut into tiles of queries, and each (tile, KV head)
// is one item, so the kernel loads each key/value row once for all query heads of the
// group and all queries of the tile.
#pragma once

#include <cstdint>
#include <vector>

#include "models/batch.h"

namespace flashlm {

struct AttentionWork {
  int64_t row = 0;         // first batch row of the tile
  int32_t n_q = 0;         // rows row .. row + n_q - 1: one sequence, consecutive positions
  int32_t head_begin = 0;  // query heads [head_begin, head_end), all of one KV group
  int32_t head_end = 0;
  int64_t cost = 0;        // (query, key) pairs times heads: the order items are handed out
};

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
