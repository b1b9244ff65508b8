// Task files and the accuracy arithmetic (cli's `flashlm eval` runs the model; see
// tests/tests.cmake for the command on a real model).
#include "factory/task_eval.h"

#include <gtest/gtest.h>

#include <cmath>

namespace flashlm::factory {
namespace {

TEST(TaskEval, ParsesItemsAndNamesTheBadLine) {
  const Result<std::vector<TaskItem>> ok = parse_task(
      "{\"context\": \"In the beginning\", \"choices\": [\"God\", \"man\"], \"gold\": 0}\n\n"
      "{\"context\": \"a\", \"choices\": [\"b\", \"c\", \"d\"], \"gold\": 2}\r\n");
  ASSERT_TRUE(ok) << ok.message();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[0].choices[1], "man");
  EXPECT_EQ((*ok)[1].gold, 2);
  EXPECT_EQ(continuation((*ok)[0], 0), " God");

  const std::pair<const char*, const char*> bad[] = {
      {"{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"gold\": 2}", "line 1: \"gold\" 2 is not the index"},
      {"\n{\"context\": \"a\", \"choices\": [\"b\"], \"gold\": 0}", "line 2: \"choices\" must be an array of at least 2"},
      {"{\"context\": 5, \"choices\": [\"b\", \"c\"], \"gold\": 0}", "\"context\" must be a string"},
      {"{\"context\": \"a\", \"choices\": [\"b\", \"\"], \"gold\": 0}", "non-empty string"},
      {"{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"gold\": 0.5}", "\"gold\" must be an integer"},
      {"{\"context\": \"a\", \"choices\": [\"b\", \"c\"]", "malformed JSON"},
      {"[1, 2]", "malformed JSON or not an object"},
      {"\n \n", "no items"},
  };
  for (const auto& [text, why] : bad) {
    const Result<std::vector<TaskItem>> r = parse_task(text);
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.message().find(why), std::string::npos) << r.message();
  }
}

TEST(TaskEval, AccuracyNormalisedAccuracyAndStandardError) {
  TaskItem it;
  it.choices = {"a", "bbbb"};
  it.gold = 1;
  TaskScorer s;
  // Raw: "a" wins (-2 > -4); per byte: "bbbb" wins (-1 > -2).
  const double ll1[] = {-2.0, -4.0};
  s.add(it, ll1);
  // Both pick the gold choice.
  const double ll2[] = {-9.0, -1.0};
  s.add(it, ll2);
  // Ties go to the first choice (numpy's argmax), which is wrong here.
  const double ll3[] = {-3.0, -3.0};
  TaskItem tie = it;
  tie.choices = {"aa", "bb"};
  s.add(tie, ll3);
  const TaskResult r = s.result();
  EXPECT_EQ(r.n, 3u);
  EXPECT_DOUBLE_EQ(r.acc, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.acc_norm, 2.0 / 3.0);
  // sqrt(p (1 - p) / (n - 1)): the sample standard deviation over sqrt(n).
  EXPECT_DOUBLE_EQ(r.acc_stderr, std::sqrt((1.0 / 3.0) * (2.0 / 3.0) / 2.0));
  EXPECT_EQ(TaskScorer().result().n, 0u);
}

}  // namespace
}  // namespace flashlm::factory
