// The step planner alone: decode tokens first, then prefill chunks oldest first, never
// more than the budget, logits only where a sequence's pending tokens end.
#include "engine/step_plan.h"

#include <gtest/gtest.h>

namespace flashlm {
namespace {

TEST(StepPlan, DecodeTokensComeFirstThenPrefillOldestFirst) {
  const std::vector<int64_t> pending = {40, 1, 7, 1};
  std::vector<StepChunk> plan;
  const int64_t used = plan_step(pending, 16, &plan);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(used, 16);
  EXPECT_EQ(plan[0].seq, 1u);
  EXPECT_EQ(plan[0].n_tokens, 1);
  EXPECT_TRUE(plan[0].want_logits);
  EXPECT_EQ(plan[1].seq, 3u);
  EXPECT_TRUE(plan[1].want_logits);
  // The oldest prompt takes the rest of the budget and is not finished: no logits.
  EXPECT_EQ(plan[2].seq, 0u);
  EXPECT_EQ(plan[2].n_tokens, 14);
  EXPECT_FALSE(plan[2].want_logits);
}

TEST(StepPlan, PrefillThatEndsInTheStepWantsLogits) {
  const std::vector<int64_t> pending = {3, 5, 100};
  std::vector<StepChunk> plan;
  EXPECT_EQ(plan_step(pending, 10, &plan), 10);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].n_tokens, 3);
  EXPECT_TRUE(plan[0].want_logits);
  EXPECT_EQ(plan[1].n_tokens, 5);
  EXPECT_TRUE(plan[1].want_logits);
  EXPECT_EQ(plan[2].n_tokens, 2);
  EXPECT_FALSE(plan[2].want_logits);
}

TEST(StepPlan, BudgetCapsDecodeTokensAndSkipsEmptySequences) {
  const std::vector<int64_t> pending = {1, 0, 1, 1, 9};
  std::vector<StepChunk> plan;
  EXPECT_EQ(plan_step(pending, 2, &plan), 2);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].seq, 0u);
  EXPECT_EQ(plan[1].seq, 2u);
  EXPECT_EQ(plan_step({}, 8, &plan), 0);
  EXPECT_TRUE(plan.empty());
}

TEST(StepPlan, EverySequenceAppearsOnceAndTotalsMatch) {
  // Exhaustive over small shapes: the sum never exceeds the budget, no sequence takes
  // more than it has, and when the budget allows everything, everything is taken.
  std::vector<StepChunk> plan;
  for (int64_t budget = 1; budget <= 12; ++budget) {
    for (int64_t a = 0; a <= 6; ++a) {
      for (int64_t b = 0; b <= 6; ++b) {
        for (int64_t c = 0; c <= 6; ++c) {
          const std::vector<int64_t> pending = {a, b, c};
          const int64_t used = plan_step(pending, budget, &plan);
          int64_t sum = 0;
          std::vector<int> seen(3, 0);
          for (const StepChunk& ch : plan) {
            ASSERT_LT(ch.seq, 3u);
            ASSERT_GE(ch.n_tokens, 1);
            ASSERT_LE(ch.n_tokens, pending[ch.seq]);
            EXPECT_EQ(ch.want_logits, ch.n_tokens == pending[ch.seq]);
            ++seen[ch.seq];
            sum += ch.n_tokens;
          }
          EXPECT_EQ(sum, used);
          EXPECT_LE(used, budget);
          for (int s : seen) EXPECT_LE(s, 1);
          EXPECT_EQ(used, std::min(budget, a + b + c));
        }
      }
    }
  }
}

TEST(StepPlan, MaxChunkCapsAPrefillAndLeavesBudgetToOthers) {
  const std::vector<int64_t> pending = {50, 20};
  const std::vector<int64_t> cap = {8, 0};
  std::vector<StepChunk> plan;
  EXPECT_EQ(plan_step(pending, 32, &plan, cap), 28);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].n_tokens, 8);  // capped: not its last pending token, no logits
  EXPECT_FALSE(plan[0].want_logits);
  EXPECT_EQ(plan[1].n_tokens, 20);  // uncapped, finishes its prompt
  EXPECT_TRUE(plan[1].want_logits);
  // A cap at or above what is pending changes nothing.
  const std::vector<int64_t> big = {50, 20};
  EXPECT_EQ(plan_step(std::vector<int64_t>{5}, 32, &plan, big), 5);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_TRUE(plan[0].want_logits);
}

}  // namespace
}  // namespace flashlm
