// Attention of one query token over a paged KV cache, with grouped-query heads, a
// causal range of key positions (sliding windows narrow it) and online softmax, so no
// score row is materialised.
#pragma once

#include <cstdint>

namespace flashlm {

// Keys/values of one sequence in one layer, as stored by kv/KvCache: slot (block,
// offset) at base + (block * block_size + offset) * kv_dim.
struct PagedKvView {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t kv_dim = 0;
  int block_size = 0;
  const int32_t* block_table = nullptr;
};

struct AttentionParams {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  float scale = 1.0f;     // applied to q.k
  float softcap = 0.0f;   // > 0: scores = softcap * tanh(scores / softcap)
};

// q: [n_head, head_dim]; out: [n_head, head_dim]. Attends key positions
// [pos_begin, pos_end] inclusive. Heads in [head_begin, head_end) only.
void attention_paged(const float* q, const PagedKvView& kv, const AttentionParams& p, int64_t pos_begin,
                     int64_t pos_end, int head_begin, int head_end, float* out);

}  // namespace flashlm
