// The attention work plan: every (row, query head) in exactly one item, items within one
// sequence run and one KV group, tiles no taller than asked, largest cost first.
#include "models/attention_plan.h"

#include <gtest/gtest.h>

#include <vector>

namespace flashlm {
namespace {

// Checks the plan's invariants and returns how many times each (row, head) is covered.
void check_plan(const Batch& b, const AttentionPlanParams& p, const std::vector<AttentionWork>& work) {
  const int group = p.n_head / p.n_head_kv;
  std::vector<int> covered(static_cast<size_t>(b.size() * p.n_head), 0);
  for (size_t i = 0; i < work.size(); ++i) {
    const AttentionWork& w = work[i];
    ASSERT_GE(w.n_q, 1);
    ASSERT_LE(w.row + w.n_q, b.size());
    ASSERT_LT(w.head_begin, w.head_end);
    EXPECT_EQ(w.head_begin / group, (w.head_end - 1) / group) << "item straddles two KV groups";
    const int heads = w.head_end - w.head_begin;
    if (heads * w.n_q > p.max_rows) {
      EXPECT_EQ(w.n_q, 1) << "tile taller than max_rows";
    }
    for (int32_t t = 0; t < w.n_q; ++t) {
      const auto r = static_cast<size_t>(w.row + t);
      if (t > 0) {
        EXPECT_EQ(b.seq[r], b.seq[r - 1]);
        EXPECT_EQ(b.pos[r], b.pos[r - 1] + 1);
      }
      for (int h = w.head_begin; h < w.head_end; ++h) ++covered[r * static_cast<size_t>(p.n_head) + static_cast<size_t>(h)];
    }
    if (i > 0) {
      EXPECT_GE(work[i - 1].cost, w.cost) << "not sorted by cost";
    }
  }
  for (size_t i = 0; i < covered.size(); ++i) EXPECT_EQ(covered[i], 1) << "row " << i / static_cast<size_t>(p.n_head);
}

TEST(AttentionPlan, MixedBatchCoversEveryRowAndHeadOnce) {
  Batch b;
  b.add(1, 10, 0, true);                                 // decode, sequence 0
  for (int p = 0; p < 20; ++p) b.add(1, p, 1, p == 19);  // prompt chunk, sequence 1
  b.add(1, 5, 2, true);                                  // decode, sequence 2
  for (int p = 40; p < 43; ++p) b.add(1, p, 3, false);   // chunk appended after 40 keys
  for (int p : {7, 8, 12}) b.add(1, p, 3, false);        // same sequence, a gap: two runs
  AttentionPlanParams p;
  p.n_head = 8;
  p.n_head_kv = 2;
  p.max_rows = 16;
  p.min_items = 2;
  std::vector<AttentionWork> work;
  plan_attention(b, p, &work);
  check_plan(b, p, work);
  // Group of 4 heads and 16 rows: 4 queries per tile. Runs of 1, 20, 1, 3, 2, 1 rows give
  // 1 + 5 + 1 + 1 + 1 + 1 tiles, times two KV heads.
  EXPECT_EQ(work.size(), 20u);
  // The largest items: the chunk after 40 keys (41 + 42 + 43 keys) for 4 heads, one per
  // KV group; then the prompt's last tile (positions 16..19).
  EXPECT_EQ(work[0].cost, (41 + 42 + 43) * 4);
  EXPECT_EQ(work[0].row, 22);
  EXPECT_EQ(work[1].row, 22);
  EXPECT_EQ(work[2].cost, (17 + 18 + 19 + 20) * 4);
  EXPECT_EQ(work[2].row, 17);
}

TEST(AttentionPlan, WindowCapsTheCost) {
  Batch b;
  for (int p = 100; p < 104; ++p) b.add(1, p, 0, false);
  AttentionPlanParams p;
  p.n_head = 2;
  p.n_head_kv = 1;
  p.window = 8;
  std::vector<AttentionWork> work;
  plan_attention(b, p, &work);
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].cost, 4 * 8 * 2);
}

TEST(AttentionPlan, SplitsHeadsOnlyWhenTooFewItems) {
  Batch b;
  b.add(1, 30, 0, true);  // one decode token
  AttentionPlanParams p;
  p.n_head = 4;
  p.n_head_kv = 1;
  std::vector<AttentionWork> work;
  p.min_items = 1;
  plan_attention(b, p, &work);
  check_plan(b, p, work);
  EXPECT_EQ(work.size(), 1u);
  p.min_items = 2;
  plan_attention(b, p, &work);
  check_plan(b, p, work);
  EXPECT_EQ(work.size(), 2u);
  p.min_items = 16;  // never below one head per item
  plan_attention(b, p, &work);
  check_plan(b, p, work);
  EXPECT_EQ(work.size(), 4u);
  // Groups of 6 split as 3 + 3, never across groups; a group larger than max_rows is one
  // query per item.
  p.n_head = 12;
  p.n_head_kv = 2;
  p.min_items = 3;
  plan_attention(b, p, &work);
  check_plan(b, p, work);
  EXPECT_EQ(work.size(), 4u);
  p.n_head = 40;
  p.n_head_kv = 1;
  p.max_rows = 32;
  p.min_items = 1;
  b.add(1, 31, 0, true);
  plan_attention(b, p, &work);
  check_plan(b, p, work);
  EXPECT_EQ(work.size(), 2u);
}

TEST(AttentionPlan, EmptyBatch) {
  Batch b;
  AttentionPlanParams p;
  p.n_head = 4;
  p.n_head_kv = 2;
  std::vector<AttentionWork> work(3);
  plan_attention(b, p, &work);
  EXPECT_TRUE(work.empty());
}

}  // namespace
}  // namespace flashlm
