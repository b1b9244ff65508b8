// flashlm finetune and flashlm distill: training a dense model on a text file on the CPU
// (train/finetune.h), with next-token cross-entropy or with KL distillation from a
// teacher run on the fly (train/distill.h), optionally quantization-aware (--qat:
// train/qat.h), with checkpoints a killed run resumes from. One run, two objectives.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <optional>

#include "cli/common.h"
#include "formats/gguf_fingerprint.h"
#include "train/distill.h"
#include "train/finetune.h"
#include "train/qat.h"
#include "train/write_model.h"

namespace flashlm::cli {
namespace {

struct TrainArgs {
  bool distill = false;
  std::string model, teacher, teacher_logits, file, out, out_type = "f16", checkpointing = "none", checkpoint, qat;
  std::string lora_out;  // --train lora: the adapter file
  bool lora_flags = false;  // a --lora-* flag was given
  int64_t snapshot_every = 0;  // steps between snapshots of the outputs (OUT.stepN.gguf)
  std::string matmul = "f32";  // --matmul
  bool no_checkpoint = false;
  train::FinetuneOptions o;
  train::LoraConfig lora;
  train::DistillOptions d;
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

std::optional<tok::Tokenizer> open_tokenizer(const gguf::File& f, const std::string& path) {
  Result<tok::Tokenizer> tok = tok::Tokenizer::from_gguf(f);
  if (!tok) {
    print_error("'" + path + "': " + tok.message());
    return std::nullopt;
  }
  return std::move(tok).value();
}

// --teacher-logits: the stored teacher, checked against the student; sets the sequence
// shape and the run's description. False after printing why it cannot be used.
bool load_stored_teacher(TrainArgs& a, const tok::Tokenizer& tok, std::optional<factory::KlBase>* stored) {
  Result<factory::KlBase> kb = factory::load_kl_base(a.teacher_logits);
  if (!kb) {
    print_error(kb.message());
    return false;
  }
  if (static_cast<int32_t>(kb->n_vocab) != tok.n_vocab()) {
    print_error("the stored teacher's vocabulary (" + std::to_string(kb->n_vocab) + ") differs from the student's (" +
                std::to_string(tok.n_vocab()) + "): distillation needs one vocabulary");
    return false;
  }
  if (a.d.loss.temperature != 1.0f) {
    print_error("--temperature: a stored teacher holds log-probabilities at temperature 1 only");
    return false;
  }
  *stored = std::move(kb).value();
  train::stored_teacher_shape(**stored, &a.o.seq, &a.o.stride);
  char buf[160];
  std::snprintf(buf, sizeof buf, "distill stored=%zu positions top_k=%u ce=%g", (*stored)->n_positions(),
                (*stored)->top_k, static_cast<double>(a.d.loss.ce_weight));
  a.o.objective = buf;
  return true;
}

// --teacher: the teacher model (no gradients), its vocabulary checked token by token
// against the student's; sets the run's description.
bool load_teacher_model(TrainArgs& a, const tok::Tokenizer& tok, std::unique_ptr<train::TrainModel>* teacher) {
  Result<gguf::File> tf = gguf::File::open(a.teacher);
  if (!tf) {
    print_error(tf.message());
    return false;
  }
  std::optional<tok::Tokenizer> ttok = open_tokenizer(*tf, a.teacher);
  if (!ttok) return false;
  if (Status st = train::check_same_vocabulary(*ttok, tok); !st) {
    print_error(st.message());
    return false;
  }
  Result<std::unique_ptr<train::TrainModel>> t = train::TrainModel::load(a.teacher, /*trainable=*/false);
  if (!t) {
    print_error(t.message());
    return false;
  }
  *teacher = std::move(t).value();
  char buf[160];
  std::snprintf(buf, sizeof buf, "distill teacher=%016llx tau=%g ce=%g top_k=%d",
                static_cast<unsigned long long>(gguf::model_fingerprint(*tf)),
                static_cast<double>(a.d.loss.temperature), static_cast<double>(a.d.loss.ce_weight), a.d.top_k);
  a.o.objective = buf;
  return true;
}

// --qat TYPE or --qat same: the fake-quantized types set on m; the run's description.
bool setup_qat(TrainArgs& a, const gguf::File& base, const std::optional<factory::QuantType>& qat,
               train::TrainModel& m, ThreadPool& pool) {
  if (!qat) {  // same
    const std::vector<DType> types = train::qat_types_same(base, m.params());
    if (std::all_of(types.begin(), types.end(), [](DType t) { return t == DType::F32; })) {
      print_error("--qat same: '" + a.model + "' holds no quantized weight matrix, so there is nothing to train "
                  "for; name a type (--qat Q4_0, ...)");
      return false;
    }
    if (Status st = m.set_fake_quant(types, pool); !st) {
      print_error("--qat same: " + st.message());
      return false;
    }
    a.o.objective += a.o.objective.empty() ? "qat=same" : " qat=same";
    a.out_type = "same";
    return true;
  }
  Result<std::vector<DType>> types = train::qat_types(base, m.params(), *qat);
  Status st = types ? m.set_fake_quant(*types, pool) : types.status();
  if (!st) {
    print_error("--qat " + a.qat + ": " + st.message());
    return false;
  }
  a.o.objective += (a.o.objective.empty() ? "qat=" : " qat=") + qat->name;
  return true;
}

// An output path the run may write: not the input, in a directory that exists.
bool check_output_path(const std::string& model, const std::string& out) {
  std::error_code ec;
  if (std::filesystem::equivalent(model, out, ec)) {
    print_error("the output '" + out + "' is the input file; write to another path");
    return false;
  }
  const std::filesystem::path out_dir = std::filesystem::absolute(out).parent_path();
  if (!std::filesystem::is_directory(out_dir, ec)) {
    print_error("the output directory '" + out_dir.string() + "' does not exist");
    return false;
  }
  return true;
}

// The outputs: -o (the model; with --train lora, the base with the adapters merged)
// and/or --lora-out (the adapter), each checked before any work.
bool check_outputs(const TrainArgs& a) {
  const bool lora = a.o.train == "lora";
  if ((!a.lora_out.empty() || a.lora_flags) && !lora) {
    print_error("--lora-out, --lora-rank, --lora-alpha and --lora-targets shape LoRA adapters: they need --train lora");
    return false;
  }
  if (a.out.empty() && a.lora_out.empty()) {
    print_error(lora ? "--train lora needs --lora-out ADAPTER.gguf (the adapter) and/or -o OUT.gguf (the merged model)"
                     : "-o OUT.gguf is required");
    return false;
  }
  if (lora && a.snapshot_every > 0 && a.lora_out.empty()) {
    print_error("--snapshot-every with --train lora writes the adapter at each snapshot: it needs --lora-out");
    return false;
  }
  if (lora && !a.qat.empty()) {
    print_error("--qat trains the base weights through their quantized form; with --train lora they are frozen "
                "(train a LoRA on a quantized base as it is, or --train all with --qat)");
    return false;
  }
  return (a.out.empty() || check_output_path(a.model, a.out)) &&
         (a.lora_out.empty() || check_output_path(a.model, a.lora_out));
}

// --train lora: the adapters added to m; the run's description.
bool setup_lora(TrainArgs& a, train::TrainModel& m) {
  if (Status st = m.add_lora(a.lora); !st) {
    print_error("--train lora: " + st.message());
    return false;
  }
  std::string targets;
  for (const std::string& t : a.lora.targets) targets += (targets.empty() ? "" : ",") + t;
  char buf[160];
  std::snprintf(buf, sizeof buf, "lora r=%d alpha=%g targets=%s", a.lora.rank, static_cast<double>(a.lora.alpha),
                targets.empty() ? "all" : targets.c_str());
  a.o.objective += (a.o.objective.empty() ? "" : " ") + std::string(buf);
  return true;
}

// PATH with ".stepN" before its extension: out.gguf -> out.step300.gguf.
std::string snapshot_path(const std::string& path, int64_t step) {
  const std::filesystem::path p(path);
  std::filesystem::path r = p;
  r.replace_filename(p.stem().string() + ".step" + std::to_string(step) + p.extension().string());
  return r.string();
}

// What the run writes: the adapter and/or the (merged) model; at a snapshot (step > 0)
// the same files with ".stepN" in their names. Merging LoRA into a snapshot would change
// the weights that go on training, so a snapshot of a LoRA run writes the adapter only.
Status write_outputs(const TrainArgs& a, const gguf::File& base, train::TrainModel& m,
                     const std::vector<bool>& trained, const std::optional<factory::QuantType>& qat,
                     int64_t snapshot_step = 0) {
  auto path = [&](const std::string& p) { return snapshot_step > 0 ? snapshot_path(p, snapshot_step) : p; };
  if (!a.lora_out.empty()) {
    if (Status st = train::write_lora_adapter(base, m, path(a.lora_out)); !st) return st;
  }
  if (a.out.empty() || (snapshot_step > 0 && m.has_lora())) return Status::ok();
  if (qat) return train::write_qat_model(base, m.params(), trained, *qat, path(a.out));
  std::vector<bool> written = trained;
  if (m.has_lora()) {
    for (const int i : m.merge_lora()) written[static_cast<size_t>(i)] = true;
  }
  return train::write_trained_model(base, m.params(), written, a.out_type, path(a.out));
}

// A training step allocates and frees the same large buffers every time (logits and their
// gradient alone are ctx x n_vocab floats). glibc maps each block over 32 MiB afresh and
// unmaps it when freed, and the kernel zeroes every page again on the next step: 14% of a
// SmolLM2 step at --ctx 512 (perf). Kept in the heap instead, the blocks are reused.
void keep_large_blocks_in_heap() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

int run_training(TrainArgs a) {
  const char* cmd = a.distill ? "distill" : "finetune";
  keep_large_blocks_in_heap();
  if (!parse_checkpointing(a.checkpointing, &a.o.checkpoint_every)) {
    print_error("--checkpointing takes none, layer or every-N (N >= 1); it was '" + a.checkpointing + "'");
    return 1;
  }
  if (!check_outputs(a)) return 1;
  a.o.matmul = a.matmul == "bf16" ? SgemmInputs::kBf16 : SgemmInputs::kF32;
  if (a.o.matmul == SgemmInputs::kBf16 && !sgemm_bf16_native()) {
    std::fprintf(stderr, "%s: note: this CPU has no AVX512_BF16; --matmul bf16 is emulated and slower than f32\n", cmd);
  }
  const std::string& first_out = a.lora_out.empty() ? a.out : a.lora_out;
  a.o.checkpoint = a.no_checkpoint ? "" : a.checkpoint.empty() ? first_out + ".ckpt" : a.checkpoint;
  std::optional<factory::QuantType> qat;
  const bool qat_same = a.qat == "same" || a.qat == "SAME";
  if (!a.qat.empty() && !qat_same) {
    Result<factory::QuantType> q = factory::parse_quant_type(a.qat);
    if (!q) {
      print_error("--qat: " + q.message());
      return 1;
    }
    qat = *q;
  }
  Result<gguf::File> base = gguf::File::open(a.model);
  if (!base) {
    print_error(base.message());
    return 1;
  }
  std::optional<tok::Tokenizer> tok = open_tokenizer(*base, a.model);
  if (!tok) return 1;
  std::unique_ptr<train::TrainModel> teacher;
  std::optional<factory::KlBase> stored;  // --teacher-logits
  if (a.distill && a.teacher.empty() && a.teacher_logits.empty()) {
    print_error("distill needs a teacher: --teacher MODEL.gguf or --teacher-logits FILE (perplexity --kl-save)");
    return 1;
  }
  if (!a.teacher_logits.empty() && !load_stored_teacher(a, *tok, &stored)) return 1;
  if (a.distill && !a.teacher.empty() && !load_teacher_model(a, *tok, &teacher)) return 1;
  const std::optional<std::string> text = read_text_file(a.file);
  if (!text) return 1;
  std::vector<int32_t> tokens = tok->encode(*text, true, false);
  if (stored) {  // its chunks, checked against the text, are the training sequences
    if (Status st = train::check_stored_chunks(*stored, tokens, tok->add_bos() ? tok->bos() : -1); !st) {
      print_error("'" + a.file + "': " + st.message());
      return 1;
    }
    tokens = stored->tokens;
  }
  Result<std::unique_ptr<train::TrainModel>> m = train::TrainModel::load(a.model);
  if (!m) {
    print_error(m.message());
    return 1;
  }
  const int n_threads = a.threads > 0 ? a.threads : default_thread_count();
  note_thread_cap(a.threads);
  ThreadPool pool(n_threads);
  if ((qat || qat_same) && !setup_qat(a, *base, qat, **m, pool)) return 1;
  if (a.o.train == "lora" && !setup_lora(a, **m)) return 1;
  std::fprintf(stderr, "%s: %s, %zu tokens of '%s', %d threads, --train %s, --matmul %s%s%s, checkpoints: %s\n",
               cmd, a.model.c_str(), tokens.size(), a.file.c_str(), n_threads, a.o.train.c_str(), a.matmul.c_str(),
               !a.teacher.empty()          ? (", teacher " + a.teacher).c_str()
               : !a.teacher_logits.empty() ? (", stored teacher " + a.teacher_logits).c_str()
                                           : "",
               qat ? (", QAT " + qat->name).c_str() : qat_same ? ", QAT in the file's own types" : "",
               a.o.checkpoint.empty() ? "none" : ("'" + a.o.checkpoint + "'").c_str());
  train::CrossEntropyObjective ce;
  std::optional<train::DistillObjective> kd;
  std::optional<train::StoredTeacherObjective> kd_stored;
  if (teacher) kd.emplace(*teacher, a.d);
  if (stored) kd_stored.emplace(*stored, a.d.loss);
  train::Objective& objective = kd          ? static_cast<train::Objective&>(*kd)
                                : kd_stored ? static_cast<train::Objective&>(*kd_stored)
                                            : ce;
  const std::string held_name = objective.held_out_name();

  g_stop = false;
  std::signal(SIGINT, on_sigint);
  bool snapshot_failed = false;
  auto progress = [&](const train::StepReport& r) {
    std::fprintf(stderr, "\rstep %lld/%lld | loss %.4f", static_cast<long long>(r.step),
                 static_cast<long long>(r.total), r.loss);
    if (r.valid_loss >= 0.0) std::fprintf(stderr, " | %s %.4f", held_name.c_str(), r.valid_loss);
    std::fprintf(stderr, " | lr %.2e | %.0f tok/s | ETA %s | act %.0f MiB   ", static_cast<double>(r.lr),
                 r.tokens_per_s, clock_text(r.eta_s).c_str(), static_cast<double>(r.peak_act_bytes) / 1048576.0);
    if (r.valid_loss >= 0.0) std::fprintf(stderr, "\n");
    if (a.snapshot_every > 0 && r.step % a.snapshot_every == 0 && r.step < r.total) {
      Result<std::vector<bool>> trained = train::trainable_mask(**m, a.o.train);
      Status st = trained ? write_outputs(a, *base, **m, *trained, qat, r.step) : trained.status();
      if (!st) {  // stop at the next step boundary, keeping the checkpoint
        print_error("snapshot at step " + std::to_string(r.step) + ": " + st.message());
        snapshot_failed = true;
        g_stop = true;
      }
    }
  };
  Result<train::FinetuneResult> res =
      train::finetune(**m, tokens, a.o, objective, gguf::model_fingerprint(*base), pool, progress, &g_stop);
  std::signal(SIGINT, SIG_DFL);
  std::fprintf(stderr, "\n");
  if (!res) {
    print_error(res.message());
    return 1;
  }
  if (res->resumed_from >= 0) {
    std::fprintf(stderr, "%s: resumed from step %lld\n", cmd, static_cast<long long>(res->resumed_from));
  }
  if (snapshot_failed) return 1;
  if (res->stopped) {
    if (a.o.checkpoint.empty()) {
      std::fprintf(stderr, "%s: stopped at step %lld (no checkpoint: --no-checkpoint)\n", cmd,
                   static_cast<long long>(res->steps_done));
    } else {
      std::fprintf(stderr, "%s: stopped at step %lld; checkpoint '%s' (run again with --resume)\n", cmd,
                   static_cast<long long>(res->steps_done), a.o.checkpoint.c_str());
    }
    return 130;
  }
  if (Status st = write_outputs(a, *base, **m, res->trained, qat); !st) {
    print_error(st.message());
    return 1;
  }
  std::string wrote;
  if (!a.lora_out.empty()) wrote = "adapter '" + a.lora_out + "'";
  if (!a.out.empty()) {
    wrote += (wrote.empty() ? "'" : ", merged model '") + a.out + "'" + (qat ? " in " + qat->name : std::string());
  }
  std::fprintf(stderr, "%s: %s %.4f -> %.4f; wrote %s (peak RSS %.0f MiB)\n", cmd, held_name.c_str(),
               res->initial_valid_loss, res->final_valid_loss, wrote.c_str(), peak_rss_mib());
  return 0;
}

// The options finetune and distill share: the text, the output, the optimizer, what
// trains, QAT, checkpointing and checkpoints.
void add_training_options(CLI::App* sub, TrainArgs& a) {
  train::FinetuneOptions& o = a.o;
  sub->add_option("-f,--file", a.file, "training text (its tail is held out: --valid-fraction)")->required();
  sub->add_option("-o,--output", a.out,
                  "trained GGUF to write (with --train lora: the base with the adapters merged into it)");
  sub->add_option("--lora-out", a.lora_out,
                  "--train lora: the adapter to write, in llama.cpp's LoRA GGUF (flashlm run/serve --lora and "
                  "llama.cpp's --lora load it)");
  sub->add_option("--lora-rank", a.lora.rank, "LoRA rank (default 8)")->check(CLI::Range(1, 4096));
  sub->add_option("--lora-alpha", a.lora.alpha, "LoRA alpha: the update is scaled by alpha / rank (default 16)")
      ->check(CLI::Range(1e-6f, 1e6f));
  sub->add_option("--lora-targets", a.lora.targets,
                  "matrices LoRA adapts: attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down "
                  "(comma-separated; default all)")
      ->delimiter(',');
  auto* qat = sub->add_option("--qat", a.qat,
                              "quantization-aware training for TYPE (as flashlm quantize --type: Q4_0, Q4_K_M, ...), "
                              "or 'same' (each tensor in its own type in the input file): the forward uses the "
                              "weights quantized as that type and back, the gradient updates the F32 master "
                              "weights, and the output is written in TYPE");
  sub->add_option("--out-type", a.out_type, "type of the trained tensors: f32, f16, bf16, same (default f16)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "same"}))
      ->excludes(qat);
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
  sub->add_option("--train", o.train,
                  "what trains: all, norms, router (MoE routers), experts (MoE experts), lora (low-rank adapters on "
                  "a frozen base: --lora-rank, --lora-alpha, --lora-targets, --lora-out) (default all)");
  sub->add_option("--checkpointing", a.checkpointing,
                  "gradient checkpointing: none, layer, every-N (keep every N-th layer's input, recompute the rest "
                  "in the backward; default none)");
  auto* ckpt = sub->add_option("--checkpoint", a.checkpoint, "checkpoint file (default OUTPUT.ckpt)");
  sub->add_flag("--no-checkpoint", a.no_checkpoint, "write no checkpoint (a stopped run cannot resume)")
      ->excludes(ckpt);
  sub->add_option("--save-every", o.save_every, "steps between checkpoints (default: at the end and on ^C)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_option("--matmul", a.matmul,
                  "what the inputs of every matmul are rounded to: f32, or bf16 (weights and activations; the "
                  "master weights and AdamW's moments stay F32). bf16 runs on AVX512_BF16 where the CPU has it "
                  "and is emulated, slower than f32, where it does not (default f32)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  sub->add_option("--snapshot-every", a.snapshot_every,
                  "steps between snapshots: the outputs as they are at that step, written beside them with "
                  ".stepN in their names (out.step300.gguf; default: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_flag("--resume", o.resume, "continue from the checkpoint when it exists");
  sub->add_option("--valid-fraction", o.valid_fraction, "tail of the text held out for the validation figure (0.1)")
      ->check(CLI::Range(0.0, 0.9));
  sub->add_option("--eval-every", o.eval_every, "steps between held-out figures (default: at the end)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_option("-t,--threads", a.threads, "threads (0: the CPUs this process may use)")->check(CLI::Range(0, 1024));
}

}  // namespace

void add_finetune(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* sub = app.add_subcommand(
      "finetune",
      "fine-tune a dense model (llama, qwen2, qwen3, gemma3) on a text file: next-token cross-entropy, AdamW with "
      "warm-up and cosine decay, gradient accumulation, F32 master weights, optionally quantization-aware (--qat). "
      "^C stops after the step in flight and writes a checkpoint; --resume continues from it.");
  sub->add_option("-m,--model", args->model, "base GGUF model")->required();
  add_training_options(sub, *args);
  sub->final_callback([args, exit_code, sub] {
    args->lora_flags = sub->count("--lora-rank") + sub->count("--lora-alpha") + sub->count("--lora-targets") > 0;
    *exit_code = run_training(*args);
  });
}

void add_distill(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<TrainArgs>();
  args->distill = true;
  CLI::App* sub = app.add_subcommand(
      "distill",
      "distill a teacher into a student of the same vocabulary (a pruned, quantized or fine-tuned form of it): "
      "loss = T^2 KL(teacher || student) over the teacher's top-k log-probabilities at temperature T, plus "
      "--ce-weight times the next-token cross-entropy; the teacher runs on the fly (--teacher) or comes from a "
      "perplexity --kl-save file of the same text (--teacher-logits). With --qat the student learns "
      "to be quantized. Training options as flashlm finetune.");
  auto* teacher = sub->add_option("--teacher", args->teacher, "teacher GGUF model (the base), run on the fly");
  auto* stored = sub->add_option("--teacher-logits", args->teacher_logits,
                                 "the teacher's top-k log-probabilities from `perplexity --kl-save FILE` over the same "
                                 "--file: its chunks become the training sequences (temperature 1)")
                     ->excludes(teacher);
  sub->add_option("-m,--student", args->model, "student GGUF model (trained and written to --output)")->required();
  sub->add_option("--temperature", args->d.loss.temperature, "softmax temperature of both distributions (default 1)")
      ->check(CLI::Range(0.05f, 100.0f));
  sub->add_option("--ce-weight", args->d.loss.ce_weight, "weight of the next-token cross-entropy (default 0)")
      ->check(CLI::Range(0.0f, 100.0f));
  sub->add_option("--kl-top", args->d.top_k, "teacher log-probabilities kept per position (default 64)")
      ->excludes(stored)
      ->check(CLI::Range(1, 1 << 20));
  add_training_options(sub, *args);
  sub->get_option("--ctx")->excludes(stored);  // the stored teacher's chunks set the length
  sub->final_callback([args, exit_code, sub] {
    args->lora_flags = sub->count("--lora-rank") + sub->count("--lora-alpha") + sub->count("--lora-targets") > 0;
    *exit_code = run_training(*args);
  });
}

}  // namespace flashlm::cli
