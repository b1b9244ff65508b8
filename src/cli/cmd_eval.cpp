// flashlm eval: multiple-choice task accuracy by log-likelihood (factory/task_eval.h).
// Per item the context is evaluated once; each choice continues it from the longest
// prefix the sequence already holds (the choices usually differ only after the context).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "factory/task_eval.h"
#include "kernels/cpu/ops.h"

namespace flashlm::cli {
namespace {

struct EvalArgs {
  CommonArgs common;
  std::string task;
  int limit = 0;
};

// NAME -> data/tasks/NAME.jsonl (what scripts/make_tasks.py writes), else a path.
std::string task_path(const std::string& task) {
  if (task.find('/') == std::string::npos && !task.ends_with(".jsonl")) return "data/tasks/" + task + ".jsonl";
  return task;
}

int eval(EvalArgs a) {
  const std::string path = task_path(a.task);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    print_error("cannot read task '" + path + "' (built-in tasks: kjv-next-verse, kjv-last-word; scripts/make_tasks.py "
                "makes them)");
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  Result<std::vector<factory::TaskItem>> items = factory::parse_task(ss.str());
  if (!items) {
    print_error("'" + path + "': " + items.message());
    return 1;
  }
  if (a.limit > 0 && static_cast<size_t>(a.limit) < items->size()) items->resize(static_cast<size_t>(a.limit));
  if (a.common.ctx == 0) a.common.ctx = 512;
  std::unique_ptr<Loaded> l = load(a.common, LoadFor::kRunner);
  if (!l) return 1;
  const Tokenizer& tok = *l->tok;
  Runner& runner = *l->runner;
  const int64_t n_ctx = runner.n_ctx();
  const int64_t n_vocab = l->model->config().n_vocab;
  const int seq = runner.seq_new();
  std::vector<int32_t> held;  // the tokens the sequence holds
  std::vector<float> logits;
  factory::TaskScorer scorer;
  size_t truncated = 0;
  for (size_t i = 0; i < items->size(); ++i) {
    const factory::TaskItem& it = (*items)[i];
    const std::vector<int32_t> ctx = tok.encode(it.context, true, false);
    std::vector<double> ll(it.choices.size());
    for (size_t c = 0; c < it.choices.size(); ++c) {
      // Scored as lm-evaluation-harness does: the whole text is tokenized and the tokens
      // after the context's count are the choice's.
      std::vector<int32_t> whole = tok.encode(it.context + factory::continuation(it, c), true, false);
      auto n_ctx_tok = static_cast<int64_t>(ctx.size());
      if (n_ctx_tok >= static_cast<int64_t>(whole.size()) || n_ctx_tok < 1) {
        print_error("task item " + std::to_string(i + 1) + ": choice " + std::to_string(c) + " adds no tokens");
        return 1;
      }
      if (static_cast<int64_t>(whole.size()) > n_ctx) {  // keep the end, as the harness does
        const int64_t cut = static_cast<int64_t>(whole.size()) - n_ctx;
        if (cut >= n_ctx_tok) {
          print_error("task item " + std::to_string(i + 1) + ": its choice alone is longer than the context (-c)");
          return 1;
        }
        whole.erase(whole.begin(), whole.begin() + cut);
        n_ctx_tok -= cut;
        ++truncated;
      }
      // Reuse what the sequence holds; the logits from position n_ctx_tok - 1 on are needed.
      const auto common = static_cast<int64_t>(
          std::mismatch(held.begin(), held.end(), whole.begin(), whole.end()).first - held.begin());
      const int64_t p0 = runner.seq_truncate(seq, std::min(common, n_ctx_tok - 1));
      held.resize(static_cast<size_t>(p0));
      const std::span<const int32_t> rest(whole.data() + p0, whole.size() - static_cast<size_t>(p0));
      if (Status st = runner.eval(seq, rest, true, &logits); !st) {
        print_error(st.message());
        return 1;
      }
      held = whole;
      double sum = 0.0;
      for (int64_t j = n_ctx_tok - 1; j + 1 < static_cast<int64_t>(whole.size()); ++j) {
        const float* row = logits.data() + (j - p0) * n_vocab;
        sum += row[whole[static_cast<size_t>(j + 1)]] - ops::logsumexp(row, n_vocab);
      }
      ll[c] = sum;
    }
    scorer.add(it, ll);
    if ((i + 1) % 50 == 0 || i + 1 == items->size()) {
      const factory::TaskResult r = scorer.result();
      std::fprintf(stderr, "eval: %zu/%zu items, acc %.4f, acc_norm %.4f\n", i + 1, items->size(), r.acc, r.acc_norm);
    }
  }
  const factory::TaskResult r = scorer.result();
  std::printf("task %s: %zu items\n", std::filesystem::path(path).stem().c_str(), r.n);
  std::printf("acc = %.4f +/- %.4f\n", r.acc, r.acc_stderr);
  std::printf("acc_norm = %.4f +/- %.4f\n", r.acc_norm, r.acc_norm_stderr);
  if (truncated > 0) std::fprintf(stderr, "eval: %zu choices had their context cut to fit -c %lld\n", truncated,
                                  static_cast<long long>(n_ctx));
  return 0;
}

}  // namespace

void add_eval(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* sub = app.add_subcommand("eval", "multiple-choice task accuracy by log-likelihood (lm-evaluation-harness's method)");
  add_common_flags(sub, &args->common);
  sub->add_option("--task", args->task, "a task name (kjv-next-verse, kjv-last-word: data/tasks/NAME.jsonl) or a .jsonl file")
      ->required();
  sub->add_option("--limit", args->limit, "evaluate only the first N items (0: all)")->check(CLI::Range(0, 1 << 30));
  sub->final_callback([args, exit_code] { *exit_code = eval(*args); });
}

}  // namespace flashlm::cli
