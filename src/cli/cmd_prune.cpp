// flashlm prune: structured width and depth pruning of a dense model, scored from
// calibration activations (factory/prune.h).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "factory/activations.h"
#include "factory/prune.h"

namespace flashlm::cli {
namespace {

struct PruneArgs {
  std::string model, out, file;
  double ffn_keep = -1.0;
  factory::PruneOptions opts;
  int64_t ctx = 512;
  int64_t chunks = 0;
  int threads = 0;
};

// --ffn-keep's fraction as a neuron count: rounded up to a multiple of 32 when the
// model's width is one, so the pruned model still quantizes to every block type.
int64_t neurons_for_fraction(double f, int64_t n_ff) {
  int64_t n = std::llround(f * static_cast<double>(n_ff));
  if (n_ff % 32 == 0 && n % 32 != 0) n = (n / 32 + 1) * 32;
  return std::min(n, n_ff);
}

double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

int run_prune(PruneArgs a) {
  const auto t0 = std::chrono::steady_clock::now();
  // Everything that can be checked without the calibration pass is checked first.
  const factory::PruneOptions& o = a.opts;
  if (a.ffn_keep == -1.0 && o.ffn_neurons < 0 && o.kv_groups < 0 && o.heads_per_group < 0 && o.drop_layers == 0) {
    print_error("nothing to prune: give --ffn, --ffn-keep, --kv-groups, --heads-per-group or --drop-layers");
    return 1;
  }
  Result<gguf::File> in = gguf::File::open(a.model);
  if (!in) {
    print_error(in.message());
    return 1;
  }
  Result<factory::PruneShape> shape = factory::read_prune_shape(*in);
  if (!shape) {
    print_error("'" + a.model + "': " + shape.message());
    return 1;
  }
  if (a.ffn_keep != -1.0) {
    if (!(a.ffn_keep > 0.0 && a.ffn_keep <= 1.0)) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "--ffn-keep must be a fraction in (0, 1]; it was %g", a.ffn_keep);
      print_error(buf);
      return 1;
    }
    a.opts.ffn_neurons = neurons_for_fraction(a.ffn_keep, shape->n_ff);
  }
  if (Status st = factory::check_prune_options(*shape, a.opts); !st) {
    print_error(st.message());
    return 1;
  }
  std::error_code ec;
  if (std::filesystem::equivalent(a.model, a.out, ec)) {
    print_error("the output '" + a.out + "' is the input file; write to another path");
    return 1;
  }

  std::unique_ptr<Calibration> c = run_calibration("prune", a.model, a.file, a.ctx, a.chunks, a.threads);
  if (!c) return 1;
  const factory::ActivationStats* stats = &c->stats;
  Result<factory::WeightNorms> norms = factory::read_weight_norms(c->model->file(), *shape);
  Result<factory::PrunePlan> plan =
      norms ? factory::plan_prune(*shape, *stats, *norms, a.opts) : Result<factory::PrunePlan>(norms.status());
  if (!plan) {
    print_error(plan.message());
    return 1;
  }
  std::fprintf(stderr, "prune: plan\n%s", factory::describe_plan(*plan).c_str());
  for (const std::string& w : plan->warnings) std::fprintf(stderr, "prune: warning: %s\n", w.c_str());
  Result<factory::PruneWriteResult> res = factory::write_pruned(c->model->file(), *plan, a.out);
  if (!res) {
    print_error(res.message());
    return 1;
  }
  for (const std::string& t : res->f16_fallbacks) {
    std::fprintf(stderr, "prune: '%s' written as F16: its new row length does not fit its type's blocks\n", t.c_str());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "prune: %.2f MiB -> %.2f MiB (%.1f%%), written to '%s' in %.1f s\n",
               mib(c->model->file().file_size()), mib(res->bytes_written),
               100.0 * static_cast<double>(res->bytes_written) / static_cast<double>(c->model->file().file_size()),
               a.out.c_str(), s);
  return 0;
}

}  // namespace

void add_prune(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<PruneArgs>();
  CLI::App* sub = app.add_subcommand(
      "prune",
      "structured pruning scored from calibration activations: FFN neurons, attention heads / KV groups, layers.\n"
      "Neurons score sqrt(mean activation^2) * ||ffn_down column||, heads sqrt(mean attn_output input energy) * "
      "||attn_output columns||, KV groups the sum of their heads, layers their block influence (1 - cos(input, "
      "output)); every layer keeps the same counts. Prune the F16/F32 base, then quantize: a column slice of a "
      "quantized tensor is requantized (or written F16 when its new rows do not fit the type's blocks).");
  sub->add_option("-m,--model", args->model, "dense GGUF model (llama, gemma3, qwen2, qwen3)")->required();
  sub->add_option("-o,--output", args->out, "pruned GGUF to write (not the input)")->required();
  sub->add_option("-f,--file", args->file, "calibration text")->required();
  auto* keep = sub->add_option("--ffn-keep", args->ffn_keep,
                               "fraction of FFN neurons kept per layer, in (0, 1]; rounded up to a multiple of 32");
  sub->add_option("--ffn", args->opts.ffn_neurons, "FFN neurons kept per layer (1..feed_forward_length)")
      ->excludes(keep);
  sub->add_option("--kv-groups", args->opts.kv_groups, "KV groups (KV heads) kept per layer, with their query heads");
  sub->add_option("--heads-per-group", args->opts.heads_per_group, "query heads kept in each kept KV group");
  sub->add_option("--drop-layers", args->opts.drop_layers, "layers removed: those of least block influence");
  sub->add_option("-c,--ctx", args->ctx, "calibration tokens per chunk (default 512)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 16));
  sub->add_option("--chunks", args->chunks, "calibration chunks (default: the whole text)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  sub->add_option("-t,--threads", args->threads, "threads (0: the CPUs this process may use)")->check(CLI::Range(0, 1024));
  sub->final_callback([args, exit_code] { *exit_code = run_prune(*args); });
}

}  // namespace flashlm::cli
