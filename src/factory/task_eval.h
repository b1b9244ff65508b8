// Multiple-choice task accuracy by log-likelihood, the method lm-evaluation-harness uses:
// each choice is scored as the continuation of the item's context (after one space), the
// model's pick is the choice with the highest total log-probability (acc) or the highest
// per byte of the choice (acc_norm), and each figure comes with its standard error.
// The model calls live in the command (cli/cmd_eval.cpp); this is the data and the
// arithmetic.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace flashlm::factory {

struct TaskItem {
  std::string context;
  std::vector<std::string> choices;
  int gold = 0;
};

// JSON Lines, one item per line: {"context": str, "choices": [str, ...], "gold": int}
// (blank lines skipped). An error names the line and what is wrong with it.
Result<std::vector<TaskItem>> parse_task(std::string_view jsonl);

// The text scored for a choice: one space, then the choice.
std::string continuation(const TaskItem& item, size_t choice);

struct TaskResult {
  size_t n = 0;
  double acc = 0.0, acc_stderr = 0.0;
  double acc_norm = 0.0, acc_norm_stderr = 0.0;
};

class TaskScorer {
 public:
  // loglik[c]: the sum of the log-probabilities of choice c's tokens.
  void add(const TaskItem& item, std::span<const double> loglik);
  TaskResult result() const;

 private:
  size_t n_ = 0, right_ = 0, right_norm_ = 0;
};

}  // namespace flashlm::factory
