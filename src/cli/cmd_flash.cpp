// flashlm flash: one command from a base model to its Flash form. A recipe
// (factory/flash_recipe.h) lists steps; each runs as this binary's own subcommand
// (imatrix, prune, moefy, distill, quantize, perplexity, eval) in a child process whose
// output goes to the terminal and to the step's log in the work directory. A finished
// step leaves a marker holding its commands and its inputs' sizes and times; a step whose
// marker matches is not run again, so a killed pipeline resumes where it stopped (a
// distillation from its own checkpoint).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "factory/flash_recipe.h"

extern char** environ;

namespace flashlm::cli {
namespace {

namespace fs = std::filesystem;
using factory::FlashStepKind;

struct FlashArgs {
  std::string model, out, file, recipe = "balanced", work, eval_file;
  double budget_minutes = 30.0;
  bool budget_given = false;  // --budget-minutes on the command line
  bool dry_run = false;
  int threads = 0;
};

using Command = std::vector<std::string>;  // a subcommand and its arguments

struct PlannedStep {
  factory::FlashStep step;
  std::string label;           // "02-prune": the prefix of its files in the work directory
  std::string output;          // the model it writes ("" for imatrix and evaluate)
  std::vector<Command> commands;
  std::vector<std::string> inputs;  // files whose size and time are part of the marker
  double minutes = -1.0;       // distill with a budget: its minutes (steps from a probe)
};

std::string join(const Command& c) {
  std::string s;
  for (const std::string& a : c) {
    const bool quote = a.empty() || a.find_first_of(" \t'\"") != std::string::npos;
    s += (s.empty() ? "" : " ") + (quote ? "'" + a + "'" : a);
  }
  return s;
}

double mib(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0.0 : static_cast<double>(n) / (1024.0 * 1024.0);
}

std::string flag_value(const factory::FlashStep& s, const std::string& flag, const std::string& fallback) {
  for (const auto& [f, v] : s.flags) {
    if (f == flag) return v;
  }
  return fallback;
}

// The plan: every step's commands over the files of the work directory. Errors are
// what the recipe asks that these inputs cannot give (an imatrix nobody made, an
// evaluation without held-out text, a recipe that makes no model).
Result<std::vector<PlannedStep>> plan(const FlashArgs& a, const factory::FlashRecipe& r) {
  std::vector<PlannedStep> out;
  std::string cur = a.model, imatrix;
  const std::string threads = std::to_string(a.threads);
  double shared = 0.0;
  int unshared = 0;
  for (const factory::FlashStep& s : r.steps) {
    if (s.kind != FlashStepKind::kDistill || s.has_steps) continue;
    if (s.share > 0.0) shared += s.share;
    else ++unshared;
  }
  if (shared > 1.0 + 1e-9) return Status::error("the distill steps' shares add up to more than 1");
  if (a.budget_given && shared == 0.0 && unshared == 0) {
    return Status::error("--budget-minutes is for distill steps without 'steps', and the recipe has none");
  }
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const factory::FlashStep& s = r.steps[i];
    PlannedStep p;
    p.step = s;
    char num[24];
    std::snprintf(num, sizeof num, "%02zu", i + 1);
    p.label = std::string(num) + "-" + factory::flash_step_name(s.kind);
    const std::string base = (fs::path(a.work) / p.label).string();
    Command c = {factory::flash_step_name(s.kind)};
    auto add_flags = [&] {
      for (const auto& [f, v] : s.flags) {
        c.push_back(f);
        if (!v.empty()) c.push_back(v);
      }
      c.insert(c.end(), {"-t", threads});
    };
    switch (s.kind) {
      case FlashStepKind::kImatrix:
        c.insert(c.end(), {"-m", cur, "-f", a.file, "-o", base + ".gguf"});
        add_flags();
        imatrix = base + ".gguf";
        p.inputs = {cur, a.file};
        break;
      case FlashStepKind::kPrune:
      case FlashStepKind::kMoefy:
        p.output = base + ".gguf";
        c.insert(c.end(), {"-m", cur, "-o", p.output, "-f", a.file});
        add_flags();
        p.inputs = {cur, a.file};
        break;
      case FlashStepKind::kDistill:
        p.output = base + ".gguf";
        c = {"distill", "--teacher", a.model, "-m", cur, "-f", a.file, "-o", p.output};
        add_flags();
        // A checkpoint every 50 steps, used when the step is run again after a kill.
        c.insert(c.end(), {"--save-every", "50", "--resume"});
        if (!s.has_steps) {
          p.minutes = a.budget_minutes * (s.share > 0.0 ? s.share : (1.0 - shared) / std::max(unshared, 1));
          if (p.minutes <= 0.0) return Status::error("step " + p.label + " has no minutes left of --budget-minutes");
        }
        p.inputs = {a.model, cur, a.file};
        break;
      case FlashStepKind::kQuantize:
        p.output = base + ".gguf";
        c.insert(c.end(), {"-m", cur, "-o", p.output});
        if (s.use_imatrix) {
          if (imatrix.empty()) {
            return Status::error("step " + p.label + ": imatrix = true needs an imatrix step before it");
          }
          c.insert(c.end(), {"--imatrix", imatrix});
        }
        add_flags();
        p.inputs = {cur};
        if (!imatrix.empty() && s.use_imatrix) p.inputs.push_back(imatrix);
        break;
      case FlashStepKind::kEvaluate: {
        if (a.eval_file.empty()) {
          return Status::error("step " + p.label + " (evaluate) needs held-out text: --eval-file FILE (not the "
                               "calibration text)");
        }
        const std::string ctx = flag_value(s, "-c", "512"), chunks = flag_value(s, "--chunks", "16");
        const std::string kl = base + ".base.kl";
        p.commands.push_back({"perplexity", "-m", a.model, "-f", a.eval_file, "-c", ctx, "--chunks", chunks,
                              "--kl-save", kl, "-t", threads});
        p.commands.push_back({"perplexity", "-m", cur, "-f", a.eval_file, "-c", ctx, "--chunks", chunks,
                              "--kl-base", kl, "-t", threads});
        if (!s.task.empty()) {
          for (const std::string& m : {a.model, cur}) {
            p.commands.push_back({"eval", "-m", m, "--task", s.task, "--limit", std::to_string(s.task_limit), "-c",
                                  ctx, "-t", threads});
          }
        }
        if (s.decode_tokens > 0) {  // decode speed, base and current alternated
          for (int round = 0; round < 2; ++round) {
            for (const std::string& m : {a.model, cur}) {
              p.commands.push_back({"bench", "-m", m, "-p", "0", "-n", std::to_string(s.decode_tokens), "-r", "3",
                                    "-t", threads});
            }
          }
        }
        p.inputs = {a.model, cur, a.eval_file};
        break;
      }
    }
    if (s.kind != FlashStepKind::kEvaluate) p.commands.push_back(c);
    if (!p.output.empty()) cur = p.output;
    out.push_back(std::move(p));
  }
  if (cur == a.model) return Status::error("the recipe makes no model (it needs a prune, moefy, distill or quantize step)");
  return out;
}

// What the marker of a finished step holds: its commands, and each input's size and
// modification time (an input that a re-run step rewrote changes it). The thread count is
// left out: flashlm's results do not depend on it, so a run resumed with another -t
// keeps what is done.
std::string marker_text(const PlannedStep& p) {
  std::string s;
  for (const Command& c : p.commands) {
    Command kept;
    for (size_t i = 0; i < c.size(); ++i) {
      if (c[i] == "-t" && i + 1 < c.size()) ++i;
      else kept.push_back(c[i]);
    }
    s += join(kept) + "\n";
  }
  for (const std::string& in : p.inputs) {
    std::error_code ec;
    const auto size = fs::file_size(in, ec);
    const auto time = fs::last_write_time(in, ec).time_since_epoch().count();
    s += "input " + in + " " + std::to_string(ec ? 0 : size) + " " + std::to_string(ec ? 0 : time) + "\n";
  }
  return s;
}

std::string marker_path(const FlashArgs& a, const PlannedStep& p) {
  return (fs::path(a.work) / (p.label + ".done")).string();
}

bool is_done(const FlashArgs& a, const PlannedStep& p) {
  std::ifstream in(marker_path(a, p));
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str() == marker_text(p) && (p.output.empty() || fs::exists(p.output));
}

Status write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return Status::error("cannot write '" + tmp + "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return ec ? Status::error("cannot rename '" + tmp + "': " + ec.message()) : Status::ok();
}

volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_interrupted = 0;
void forward_sigint(int) {
  g_interrupted = 1;
  if (g_child > 0) kill(static_cast<pid_t>(g_child), SIGINT);
}

// Runs this binary with the command; its stdout and stderr go to our stderr and to the
// log. Returns the exit status (128 + signal when a signal ended it), -1 if it could not start.
int run_child(const Command& c, const std::string& log_path, std::string* captured) {
  std::ofstream log(log_path, std::ios::app);
  log << "$ flashlm " << join(c) << "\n" << std::flush;
  int fds[2];
  if (pipe(fds) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  std::vector<std::string> args = {"flashlm"};
  args.insert(args.end(), c.begin(), c.end());
  std::vector<char*> argv;
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return -1;
  }
  g_child = pid;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::fwrite(buf, 1, static_cast<size_t>(n), stderr);
    log.write(buf, n);
    if (captured != nullptr) captured->append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  log << "\n" << std::flush;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// The value after each occurrence of `prefix` in `text` (spaces after the prefix
// skipped): the longest run of `chars`, kept when `suffix` follows it. Reads the figures
// other commands print (std::regex's instantiation trips GCC 12's -Wmaybe-uninitialized
// in the sanitized build, and this needs no regex).
std::vector<std::string> values_after(const std::string& text, const std::string& prefix, const char* chars,
                                      const std::string& suffix = "") {
  std::vector<std::string> out;
  for (size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
    size_t b = at + prefix.size();
    while (b < text.size() && text[b] == ' ') ++b;
    size_t e = b;
    while (e < text.size() && std::strchr(chars, text[e]) != nullptr && text[e] != '\0') ++e;
    if (e > b && text.compare(e, suffix.size(), suffix) == 0) out.push_back(text.substr(b, e - b));
  }
  return out;
}

constexpr const char* kNumber = "0123456789.";

// The last "N tok/s" a training command printed (its progress lines: "| N tok/s |").
double last_tokens_per_s(const std::string& out) {
  double v = 0.0;
  for (size_t at = out.find(" tok/s |"); at != std::string::npos; at = out.find(" tok/s |", at + 1)) {
    size_t b = at;
    while (b > 0 && std::strchr(kNumber, out[b - 1]) != nullptr) --b;
    if (b < at && b >= 2 && out.compare(b - 2, 2, "| ") == 0) v = std::strtod(out.substr(b, at - b).c_str(), nullptr);
  }
  return v;
}

// A budgeted distillation's step count: a 3-step probe of the same command measures its
// tokens/s, and the minutes left after the probe become steps. Kept in LABEL.steps, so a
// re-run (after a kill) resumes its checkpoint with the same schedule.
Result<int64_t> budget_steps(const FlashArgs& a, const PlannedStep& p, const std::string& log) {
  const std::string keep = (fs::path(a.work) / (p.label + ".steps")).string();
  if (std::ifstream in(keep); in) {
    int64_t n = 0;
    if (in >> n && n > 0) return n;
  }
  Command probe = p.commands[0];
  probe.resize(static_cast<size_t>(std::find(probe.begin(), probe.end(), "--save-every") - probe.begin()));
  const std::string probe_out = (fs::path(a.work) / (p.label + ".probe.gguf")).string();
  std::replace(probe.begin(), probe.end(), p.output, probe_out);
  probe.insert(probe.end(), {"--steps", "3", "--valid-fraction", "0", "--no-checkpoint"});
  std::fprintf(stderr, "flash: %s: a 3-step probe to turn %.1f minutes into steps\n", p.label.c_str(), p.minutes);
  const auto t0 = std::chrono::steady_clock::now();
  std::string captured;
  const int rc = run_child(probe, log, &captured);
  std::error_code ec;
  fs::remove(probe_out, ec);
  if (rc != 0) return Status::error("step " + p.label + ": the probe failed (exit " + std::to_string(rc) + "); see " + log);
  const double probe_min = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 60.0;
  const double tok_s = last_tokens_per_s(captured);
  const double tokens_per_step = std::stod(flag_value(p.step, "--ctx", "128")) * std::stod(flag_value(p.step, "--batch", "4"));
  if (!(tok_s > 0.0)) return Status::error("step " + p.label + ": the probe printed no tokens/s; see " + log);
  const auto n = std::max<int64_t>(1, static_cast<int64_t>(std::floor(std::max(0.0, p.minutes - probe_min) * 60.0 *
                                                                       tok_s / tokens_per_step)));
  std::fprintf(stderr, "flash: %s: %.0f tokens/s -> %lld steps of %.0f tokens in the %.1f minutes left\n",
               p.label.c_str(), tok_s, static_cast<long long>(n), tokens_per_step, p.minutes - probe_min);
  if (Status st = write_atomically(keep, std::to_string(n) + "\n"); !st) return st;
  return n;
}

std::string minutes_text(double m) {
  char buf[32];
  if (m < 1.0) std::snprintf(buf, sizeof buf, "%.0fs", m * 60.0);
  else std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", std::floor(m), std::fmod(m * 60.0, 60.0));
  return buf;
}

// The figures an evaluate step's commands printed, as a table beside the base's.
void report_evaluation(const PlannedStep& p, const std::string& model, const std::string& base, const std::string& out,
                       const std::string& json_path) {
  auto nth = [](const std::vector<std::string>& v, size_t n) { return n < v.size() ? v[n] : std::string("-"); };
  const std::vector<std::string> ppls = values_after(out, "PPL = ", kNumber);
  const std::string ppl_base = nth(ppls, 0), ppl = nth(ppls, 1);
  const std::string kl = nth(values_after(out, "mean ", "0123456789.e+-", ", p90"), 0);
  const std::string top1 = nth(values_after(out, "top-1 agreement with base: ", kNumber, "%"), 0);
  const std::vector<std::string> accs = values_after(out, "acc = ", "0123456789. +/-", "\n");  // "0.41 +/- 0.02"
  const std::string acc_base = nth(accs, 0), acc = nth(accs, 1);
  // Decode tokens/s: the bench runs alternate base, Flash, base, Flash; the mean of each.
  std::string tg_base = "-", tg = "-", tg_ratio = "-";
  if (p.step.decode_tokens > 0) {
    const std::vector<std::string> tgs =
        values_after(out, "| tg" + std::to_string(p.step.decode_tokens) + " |", kNumber);
    double sum[2] = {0.0, 0.0};
    bool ok = true;
    for (size_t k = 0; k < 4; ++k) {
      const std::string v = nth(tgs, k);
      if (v == "-") ok = false;
      else sum[k % 2] += std::strtod(v.c_str(), nullptr);
    }
    if (ok) {
      char buf[3][32];
      std::snprintf(buf[0], sizeof buf[0], "%.1f", sum[0] / 2);
      std::snprintf(buf[1], sizeof buf[1], "%.1f", sum[1] / 2);
      std::snprintf(buf[2], sizeof buf[2], "%.2fx", sum[1] / sum[0]);
      tg_base = buf[0];
      tg = buf[1];
      tg_ratio = buf[2];
    }
  }
  std::fprintf(stderr,
               "\nflash: %s\n| model | file MiB | decode t/s | PPL | mean KL to base | top-1 %% | acc (%s) |\n"
               "|---|---:|---:|---:|---:|---:|---:|\n| base %s | %.1f | %s | %s | 0 | 100 | %s |\n"
               "| Flash %s | %.1f | %s (%s) | %s | %s | %s | %s |\n\n",
               p.label.c_str(), p.step.task.empty() ? "no task" : p.step.task.c_str(), base.c_str(), mib(base),
               tg_base.c_str(), ppl_base.c_str(), acc_base.c_str(), model.c_str(), mib(model), tg.c_str(),
               tg_ratio.c_str(), ppl.c_str(), kl.c_str(), top1.c_str(), acc.c_str());
  nlohmann::json j = {
      {"base", {{"model", base}, {"mib", mib(base)}, {"decode_tps", tg_base}, {"ppl", ppl_base}, {"acc", acc_base}}},
      {"flash",
       {{"model", model}, {"mib", mib(model)}, {"decode_tps", tg}, {"ppl", ppl}, {"kl", kl}, {"top1", top1}, {"acc", acc}}},
      {"task", p.step.task}};
  (void)write_atomically(json_path, j.dump(1) + "\n");
}

int run_flash(FlashArgs a) {
  Result<factory::FlashRecipe> recipe = factory::load_flash_recipe(a.recipe);
  if (!recipe) {
    print_error(recipe.message());
    return 1;
  }
  for (const std::string& f : {a.model, a.file}) {
    if (!std::ifstream(f)) {
      print_error("cannot read '" + f + "'");
      return 1;
    }
  }
  if (!a.eval_file.empty() && !std::ifstream(a.eval_file)) {
    print_error("cannot read --eval-file '" + a.eval_file + "'");
    return 1;
  }
  std::error_code ec;
  if (fs::equivalent(a.model, a.out, ec)) {
    print_error("the output '" + a.out + "' is the input file; write to another path");
    return 1;
  }
  if (!fs::is_directory(fs::absolute(a.out).parent_path(), ec)) {
    print_error("the output directory '" + fs::absolute(a.out).parent_path().string() + "' does not exist");
    return 1;
  }
  if (a.work.empty()) a.work = a.out + ".work";
  Result<std::vector<PlannedStep>> steps = plan(a, *recipe);
  if (!steps) {
    print_error("recipe '" + recipe->origin + "': " + steps.message());
    return 1;
  }
  std::fprintf(stderr, "flash: recipe '%s' (%s)%s%s\nflash: %s -> %s, work directory %s, budget %.1f minutes of distillation\n",
               recipe->name.c_str(), recipe->origin.c_str(), recipe->description.empty() ? "" : ": ",
               recipe->description.c_str(), a.model.c_str(), a.out.c_str(), a.work.c_str(), a.budget_minutes);
  if (a.dry_run) {
    for (const PlannedStep& p : *steps) {
      const bool done = is_done(a, p);
      std::printf("%s%s%s\n", p.label.c_str(), done ? " (done: kept)" : "",
                  p.minutes > 0.0 ? (" (" + minutes_text(p.minutes) + " of distillation; steps from a 3-step probe)").c_str() : "");
      for (const Command& c : p.commands) std::printf("  flashlm %s\n", join(c).c_str());
    }
    std::string last;
    for (const PlannedStep& p : *steps) last = p.output.empty() ? last : p.output;
    std::printf("then: %s -> %s\n", last.c_str(), a.out.c_str());
    return 0;
  }
  fs::create_directories(a.work, ec);
  if (ec) {
    print_error("cannot create the work directory '" + a.work + "': " + ec.message());
    return 1;
  }
  (void)write_atomically((fs::path(a.work) / "recipe.toml").string(), recipe->text);
  struct sigaction sa = {}, old = {};
  sa.sa_handler = forward_sigint;
  sigaction(SIGINT, &sa, &old);
  const auto t_start = std::chrono::steady_clock::now();
  double other_minutes = 0.0;
  int other_done = 0;
  std::string model = a.model;
  int status = 0;
  for (size_t i = 0; i < steps->size() && status == 0; ++i) {
    PlannedStep& p = (*steps)[i];
    const std::string log = (fs::path(a.work) / (p.label + ".log")).string();
    if (is_done(a, p)) {
      std::fprintf(stderr, "flash: [%zu/%zu] %s: done, kept (%s)\n", i + 1, steps->size(), p.label.c_str(),
                   marker_path(a, p).c_str());
      if (!p.output.empty()) model = p.output;
      continue;
    }
    // The ETA: budgeted distillation at its minutes, other steps at the mean of those run so far (1 minute before any).
    double eta = 0.0;
    for (size_t j = i; j < steps->size(); ++j) {
      eta += (*steps)[j].minutes > 0.0 ? (*steps)[j].minutes : other_done > 0 ? other_minutes / other_done : 1.0;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() / 60.0;
    std::fprintf(stderr, "flash: [%zu/%zu] %s (elapsed %s, about %s to go)\n", i + 1, steps->size(), p.label.c_str(),
                 minutes_text(elapsed).c_str(), minutes_text(eta).c_str());
    const auto t0 = std::chrono::steady_clock::now();
    std::error_code rm;
    fs::remove(log, rm);
    // A step started before with other commands or inputs (the recipe or an earlier step
    // changed): its checkpoint and step count belong to that run, not this one.
    const std::string started = (fs::path(a.work) / (p.label + ".started")).string();
    if (std::ifstream in(started); in) {
      std::stringstream ss;
      ss << in.rdbuf();
      if (ss.str() != marker_text(p)) {
        for (const char* stale : {".gguf.ckpt", ".steps"}) fs::remove((fs::path(a.work) / (p.label + stale)), rm);
      }
    }
    if (Status st = write_atomically(started, marker_text(p)); !st) {
      print_error(st.message());
      status = 1;
      break;
    }
    std::vector<Command> commands = p.commands;
    if (p.minutes > 0.0) {
      Result<int64_t> n = budget_steps(a, p, log);
      if (!n) {
        print_error(n.message());
        status = 1;
        break;
      }
      commands[0].insert(commands[0].end(), {"--steps", std::to_string(*n)});
    }
    std::string captured;
    for (const Command& c : commands) {
      const int rc = run_child(c, log, &captured);
      if (rc != 0) {
        if (rc == 130 || rc == 128 + SIGINT || g_interrupted) {
          std::fprintf(stderr, "flash: stopped in %s; run the same command again to resume\n", p.label.c_str());
          status = 130;
        } else {
          print_error("step " + p.label + " failed (exit " + std::to_string(rc) + "): flashlm " + join(c) + "; its log: " + log);
          status = 1;
        }
        break;
      }
    }
    if (status != 0) break;
    if (p.step.kind == FlashStepKind::kEvaluate) {
      report_evaluation(p, model, a.model, captured, (fs::path(a.work) / (p.label + ".json")).string());
    }
    if (Status st = write_atomically(marker_path(a, p), marker_text(p)); !st) {
      print_error(st.message());
      status = 1;
      break;
    }
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 60.0;
    if (p.minutes <= 0.0) {
      other_minutes += took;
      ++other_done;
    }
    if (!p.output.empty()) {
      model = p.output;
      std::fprintf(stderr, "flash: %s wrote %s (%.1f MiB) in %s\n", p.label.c_str(), p.output.c_str(), mib(p.output),
                   minutes_text(took).c_str());
    }
  }
  sigaction(SIGINT, &old, nullptr);
  if (status != 0) return status;
  // The last model becomes the output: copied beside it, then renamed over it.
  const std::string tmp = a.out + ".tmp";
  fs::copy_file(model, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, a.out, ec);
  if (ec) {
    print_error("cannot write '" + a.out + "': " + ec.message());
    return 1;
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() / 60.0;
  std::fprintf(stderr, "flash: wrote %s (%.1f MiB; the base is %.1f MiB) in %s\n", a.out.c_str(), mib(a.out),
               mib(a.model), minutes_text(total).c_str());
  return 0;
}

}  // namespace

void add_flash(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<FlashArgs>();
  CLI::App* sub = app.add_subcommand(
      "flash",
      "make a model's Flash form: run a recipe of steps (imatrix, prune, moefy, distill, quantize, evaluate) from "
      "the base, each step's file and log kept in a work directory; a finished step is not run again, so a stopped "
      "run resumes with the same command");
  sub->add_option("-m,--model", args->model, "base GGUF model (also the distillation teacher)")->required();
  sub->add_option("-o,--output", args->out, "Flash GGUF to write")->required();
  sub->add_option("-f,--file", args->file, "calibration and training text")->required();
  std::string presets;
  for (const std::string& n : factory::flash_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  sub->add_option("--recipe", args->recipe, "a preset (" + presets + "; default balanced) or a recipe TOML file");
  sub->add_option("--budget-minutes", args->budget_minutes,
                  "minutes of distillation, shared by the distill steps without their own steps (default 30)")
      ->check(CLI::Range(0.1, 1e6));
  sub->add_option("--eval-file", args->eval_file, "held-out text for the evaluate steps (not the calibration text)");
  sub->add_option("--work", args->work, "work directory (default OUTPUT.work)");
  sub->add_flag("--dry-run", args->dry_run, "print the plan (each step's commands, and which are done) and stop");
  sub->add_option("-t,--threads", args->threads, "threads of every step (0: the CPUs this process may use)")
      ->check(CLI::Range(0, 1024));
  sub->final_callback([args, exit_code, sub] {
    args->budget_given = sub->count("--budget-minutes") > 0;
    *exit_code = run_flash(*args);
  });
}

}  // namespace flashlm::cli
