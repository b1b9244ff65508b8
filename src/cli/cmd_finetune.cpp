// flashlm finetune: full or norms-only fine-tuning of a dense model on a text file, on
// the CPU (train/finetune.h), with checkpoints a killed run resumes from.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "formats/gguf_fingerprint.h"
#include "train/finetune.h"
#include "train/write_model.h"

namespace flashlm::cli {
namespace {

struct FinetuneArgs {
  std::string model, file, out, out_type = "f16", checkpointing = "none", checkpoint;
  bool no_checkpoint = false;
  train::FinetuneOptions o;
  int threads = 0;
};

std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second ^C ends the process at once
}

std::string clock_text(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  }
  return buf;
}

// "none", "layer" or "every-N" -> layers per recomputed segment (0: none).
bool parse_checkpointing(const std::string& s, int* every) {
  if (s == "none") return (*every = 0), true;
  if (s == "layer") return (*every = 1), true;
  if (s.rfind("every-", 0) != 0) return false;
  try {
    size_t used = 0;
    const int n = std::stoi(s.substr(6), &used);
    if (used != s.size() - 6 || n < 1) return false;
    *every = n;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

int run_finetune(FinetuneArgs a) {
  if (!parse_checkpointing(a.checkpointing, &a.o.checkpoint_every)) {
    print_error("--checkpointing takes none, layer or every-N (N >= 1); it was '" + a.checkpointing + "'");
    return 1;
  }
  std::error_code ec;
  if (std::filesystem::equivalent(a.model, a.out, ec)) {
    print_error("the output '" + a.out + "' is the input file; write to another path");
    return 1;
  }
  const std::filesystem::path out_dir = std::filesystem::absolute(a.out).parent_path();
  if (!std::filesystem::is_directory(out_dir, ec)) {
    print_error("the output directory '" + out_dir.string() + "' does not exist");
    return 1;
  }
  a.o.checkpoint = a.no_checkpoint ? "" : a.checkpoint.empty() ? a.out + ".ckpt" : a.checkpoint;
  Result<gguf::File> base = gguf::File::open(a.model);
  if (!base) {
    print_error(base.message());
    return 1;
  }
  Result<tok::Tokenizer> tok = tok::Tokenizer::from_gguf(*base);
  if (!tok) {
    print_error("'" + a.model + "': " + tok.message());
    return 1;
  }
  const std::optional<std::string> text = read_text_file(a.file);
  if (!text) return 1;
  const std::vector<int32_t> tokens = tok->encode(*text, true, false);
  Result<std::unique_ptr<train::TrainModel>> m = train::TrainModel::load(a.model);
  if (!m) {
    print_error(m.message());
    return 1;
  }
  const int n_threads = a.threads > 0 ? a.threads : default_thread_count();
  note_thread_cap(a.threads);
  ThreadPool pool(n_threads);
  std::fprintf(stderr, "finetune: %s, %zu tokens of '%s', %d threads, --train %s, checkpoints: %s\n", a.model.c_str(),
               tokens.size(), a.file.c_str(), n_threads, a.o.train.c_str(),
               a.o.checkpoint.empty() ? "none" : ("'" + a.o.checkpoint + "'").c_str());

  g_stop = false;
  std::signal(SIGINT, on_sigint);
  auto progress = [&](const train::StepReport& r) {
    std::fprintf(stderr, "\rstep %lld/%lld | loss %.4f", static_cast<long long>(r.step),
                 static_cast<long long>(r.total), r.loss);
    if (r.valid_loss >= 0.0) std::fprintf(stderr, " | held-out %.4f", r.valid_loss);
    std::fprintf(stderr, " | lr %.2e | %.0f tok/s | ETA %s | act %.0f MiB   ", static_cast<double>(r.lr),
                 r.tokens_per_s, clock_text(r.eta_s).c_str(), static_cast<double>(r.peak_act_bytes) / 1048576.0);
    if (r.valid_loss >= 0.0) std::fprintf(stderr, "\n");
  };
  Result<train::FinetuneResult> res =
      train::finetune(**m, tokens, a.o, gguf::model_fingerprint(*base), pool, progress, &g_stop);
  std::signal(SIGINT, SIG_DFL);
  std::fprintf(stderr, "\n");
  if (!res) {
    print_error(res.message());
    return 1;
  }
  if (res->resumed_from >= 0) {
    std::fprintf(stderr, "finetune: resumed from step %lld\n", static_cast<long long>(res->resumed_from));
  }
  if (res->stopped) {
    if (a.o.checkpoint.empty()) {
      std::fprintf(stderr, "finetune: stopped at step %lld (no checkpoint: --no-checkpoint)\n",
                   static_cast<long long>(res->steps_done));
    } else {
      std::fprintf(stderr, "finetune: stopped at step %lld; checkpoint '%s' (run again with --resume)\n",
                   static_cast<long long>(res->steps_done), a.o.checkpoint.c_str());
    }
    return 130;
  }
  if (Status st = train::write_trained_model(*base, (*m)->params(), res->trained, a.out_type, a.out); !st) {
    print_error(st.message());
    return 1;
  }
  std::fprintf(stderr, "finetune: held-out loss %.4f -> %.4f; wrote '%s' (peak RSS %.0f MiB)\n",
               res->initial_valid_loss, res->final_valid_loss, a.out.c_str(), peak_rss_mib());
  return 0;
}

}  // namespace

void add_finetune(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<FinetuneArgs>();
  CLI::App* sub = app.add_subcommand(
      "finetune",
      "fine-tune a dense model (llama, qwen2, qwen3, gemma3) on a text file: next-token cross-entropy, AdamW with "
      "warm-up and cosine decay, gradient accumulation, F32 master weights. ^C stops after the step in flight and "
      "writes a checkpoint; --resume continues from it.");
  train::FinetuneOptions& o = args->o;
  sub->add_option("-m,--model", args->model, "base GGUF model")->required();
  sub->add_option("-f,--file", args->file, "training text (its tail is held out: --valid-fraction)")->required();
  sub->add_option("-o,--output", args->out, "fine-tuned GGUF to write")->required();
  sub->add_option("--out-type", args->out_type, "type of the trained tensors: f32, f16, bf16, same (default f16)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "same"}));
  sub->add_option("-c,--ctx", o.seq, "tokens per training sequence (default 128)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 16));
  sub->add_option("-b,--batch", o.batch, "sequences per optimizer step, gradients accumulated (default 4)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  sub->add_option("--steps", o.steps, "optimizer steps (default: one pass over the text)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_option("--lr", o.adam.lr, "peak learning rate (default 1e-4)")->check(CLI::PositiveNumber);
  sub->add_option("--warmup", o.adam.warmup, "linear warm-up steps (default 0)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_option("--min-lr-ratio", o.adam.min_lr_ratio, "cosine floor as a fraction of --lr (default 0.1)")
      ->check(CLI::Range(0.0f, 1.0f));
  sub->add_option("--weight-decay", o.adam.weight_decay, "AdamW weight decay on matrices (default 0)")
      ->check(CLI::Range(0.0f, 1.0f));
  sub->add_option("--clip", o.adam.clip, "gradient norm limit, 0 for none (default 1)")->check(CLI::NonNegativeNumber);
  sub->add_option("--train", o.train, "what trains: all, norms (default all)");
  sub->add_option("--checkpointing", args->checkpointing,
                  "gradient checkpointing: none, layer, every-N (keep every N-th layer's input, recompute the rest "
                  "in the backward; default none)");
  auto* ckpt = sub->add_option("--checkpoint", args->checkpoint, "checkpoint file (default OUTPUT.ckpt)");
  sub->add_flag("--no-checkpoint", args->no_checkpoint, "write no checkpoint (a stopped run cannot resume)")
      ->excludes(ckpt);
  sub->add_option("--save-every", o.save_every, "steps between checkpoints (default: at the end and on ^C)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_flag("--resume", o.resume, "continue from the checkpoint when it exists");
  sub->add_option("--valid-fraction", o.valid_fraction, "tail of the text held out for the validation loss (0.1)")
      ->check(CLI::Range(0.0, 0.9));
  sub->add_option("--eval-every", o.eval_every, "steps between held-out losses (default: at the end)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_option("-t,--threads", args->threads, "threads (0: the CPUs this process may use)")->check(CLI::Range(0, 1024));
  sub->final_callback([args, exit_code] { *exit_code = run_finetune(*args); });
}

}  // namespace flashlm::cli
