// What the host backends (cpu, reference) share to run an AttentionCall: the kernel's
// parameters, and a loop over the work items in which threads take items from a shared
// counter (causal tiles differ in cost), each with the paged view of its sequence.
#pragma once

#include <atomic>
#include <cstddef>

#include "backend/backend.h"
#include "kernels/cpu/attention.h"

namespace flashlm {

inline AttentionParams host_attention_params(const AttentionCall& a) {
  AttentionParams ap;
  ap.n_head = a.n_head;
  ap.n_head_kv = a.n_head_kv;
  ap.head_dim = a.head_dim;
  ap.scale = a.scale;
  ap.softcap = a.softcap;
  return ap;
}

// fn(const AttentionWork&, const PagedKvView&) for every item of the call.
template <typename Fn>
void for_each_attention_item(const ExecContext& ctx, const AttentionCall& a, Fn&& fn) {
  const KvCache& kv = *a.kv;
  std::atomic<size_t> next_item{0};
  ctx.pool->parallel_for(ctx.pool->size(), [&](int64_t, int64_t, int) {
    for (size_t i = next_item.fetch_add(1, std::memory_order_relaxed); i < a.n_items;
         i = next_item.fetch_add(1, std::memory_order_relaxed)) {
      const AttentionWork& w = a.items[i];
      PagedKvView view;
      view.k = kv.k_layer(a.layer);
      view.v = kv.v_layer(a.layer);
      view.type = kv.config().type;
      view.kv_dim = kv.config().kv_dim;
      view.block_size = kv.block_size();
      view.block_table = kv.block_table(a.layer, a.seq[w.row]).data();  // the table of the layer's group
      fn(w, view);
    }
  });
}

}  // namespace flashlm
