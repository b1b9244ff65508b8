#include "models/attention_plan.h"

#include <algorithm>

namespace flashlm {
namespace {

// Calls fn(first_row, length) for every run of rows that continue one sequence at
// consecutive positions.
template <typename Fn>
void for_each_run(const Batch& b, Fn&& fn) {
  const int64_t n = b.size();
  int64_t start = 0;
  for (int64_t t = 1; t <= n; ++t) {
    const auto i = static_cast<size_t>(t);
    if (t == n || b.seq[i] != b.seq[i - 1] || b.pos[i] != b.pos[i - 1] + 1) {
      fn(start, t - start);
      start = t;
    }
  }
}

int queries_per_item(int heads_per_item, int max_rows) { return std::max(1, max_rows / heads_per_item); }

int64_t count_items(const Batch& b, const AttentionPlanParams& p, int heads_per_item) {
  const int group = p.n_head / p.n_head_kv;
  const int64_t nt = queries_per_item(heads_per_item, p.max_rows);
  const int64_t head_chunks = (group + heads_per_item - 1) / heads_per_item;
  int64_t tiles = 0;
  for_each_run(b, [&](int64_t, int64_t len) { tiles += (len + nt - 1) / nt; });
  return tiles * p.n_head_kv * head_chunks;
}

}  // namespace

void plan_attention(const Batch& batch, const AttentionPlanParams& p, std::vector<AttentionWork>* work) {
  work->clear();
  if (batch.size() == 0 || p.n_head_kv <= 0 || p.n_head < p.n_head_kv) return;
  const int group = p.n_head / p.n_head_kv;
  // Whole groups per item keep each key/value row loaded once per group; split them
  // only when there would be too few items to keep every thread busy (decode).
  int hp = group;
  while (hp > 1 && count_items(batch, p, hp) < p.min_items) hp = (hp + 1) / 2;
  const int nt = queries_per_item(hp, p.max_rows);
  for_each_run(batch, [&](int64_t first, int64_t len) {
    for (int64_t t0 = 0; t0 < len; t0 += nt) {
      const auto n = static_cast<int32_t>(std::min<int64_t>(nt, len - t0));
      int64_t keys = 0;
      for (int32_t t = 0; t < n; ++t) {
        const int64_t pos = batch.pos[static_cast<size_t>(first + t0 + t)];
        keys += p.window > 0 ? std::min<int64_t>(pos + 1, p.window) : pos + 1;
      }
      for (int kvh = 0; kvh < p.n_head_kv; ++kvh) {
        const int g0 = kvh * group;
        for (int h = g0; h < g0 + group; h += hp) {
          const int h_end = std::min(h + hp, g0 + group);
          work->push_back({first + t0, n, h, h_end, keys * (h_end - h)});
        }
      }
    }
  });
  std::sort(work->begin(), work->end(), [](const AttentionWork& a, const AttentionWork& b) {
    if (a.cost != b.cost) return a.cost > b.cost;
    return a.row != b.row ? a.row < b.row : a.head_begin < b.head_begin;
  });
}

}  // namespace flashlm
