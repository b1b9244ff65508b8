#include "factory/task_eval.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace flashlm::factory {
namespace {

// lm-evaluation-harness's mean_stderr of a 0/1 metric: the sample standard deviation
// over sqrt(n).
double stderr_of(double p, size_t n) {
  return n > 1 ? std::sqrt(p * (1.0 - p) / static_cast<double>(n - 1)) : 0.0;
}

// The first index of the largest value (numpy's argmax).
size_t argmax(std::span<const double> v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

}  // namespace

Result<std::vector<TaskItem>> parse_task(std::string_view jsonl) {
  std::vector<TaskItem> items;
  size_t line_no = 0;
  while (!jsonl.empty()) {
    const size_t eol = jsonl.find('\n');
    const std::string_view line = jsonl.substr(0, eol);
    jsonl = eol == std::string_view::npos ? std::string_view() : jsonl.substr(eol + 1);
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto bad = [line_no](const std::string& why) {
      return Status::error("task line " + std::to_string(line_no) + ": " + why);
    };
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return bad("malformed JSON or not an object");
    TaskItem it;
    if (!j.contains("context") || !j["context"].is_string()) return bad("\"context\" must be a string");
    it.context = j["context"].get<std::string>();
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].size() < 2) {
      return bad("\"choices\" must be an array of at least 2 strings");
    }
    for (const auto& c : j["choices"]) {
      if (!c.is_string() || c.get<std::string>().empty()) return bad("every choice must be a non-empty string");
      it.choices.push_back(c.get<std::string>());
    }
    if (!j.contains("gold") || !j["gold"].is_number_integer()) return bad("\"gold\" must be an integer");
    const auto gold = j["gold"].get<int64_t>();
    if (gold < 0 || gold >= static_cast<int64_t>(it.choices.size())) {
      return bad("\"gold\" " + std::to_string(gold) + " is not the index of a choice");
    }
    it.gold = static_cast<int>(gold);
    items.push_back(std::move(it));
  }
  if (items.empty()) return Status::error("the task has no items");
  return items;
}

std::string continuation(const TaskItem& item, size_t choice) { return " " + item.choices[choice]; }

void TaskScorer::add(const TaskItem& item, std::span<const double> loglik) {
  std::vector<double> norm(loglik.begin(), loglik.end());
  for (size_t c = 0; c < norm.size(); ++c) norm[c] /= static_cast<double>(item.choices[c].size());
  ++n_;
  right_ += argmax(loglik) == static_cast<size_t>(item.gold) ? 1 : 0;
  right_norm_ += argmax(norm) == static_cast<size_t>(item.gold) ? 1 : 0;
}

TaskResult TaskScorer::result() const {
  TaskResult r;
  r.n = n_;
  if (n_ == 0) return r;
  r.acc = static_cast<double>(right_) / static_cast<double>(n_);
  r.acc_norm = static_cast<double>(right_norm_) / static_cast<double>(n_);
  r.acc_stderr = stderr_of(r.acc, n_);
  r.acc_norm_stderr = stderr_of(r.acc_norm, n_);
  return r;
}

}  // namespace flashlm::factory
