// flashlm moefy: turns a dense model into an MoE one. Calibration text is run through the
// dense model; each layer's FFN neurons are clustered into equal experts by their
// activation patterns and a router is fitted to pick the experts carrying the most
// activation mass per token (src/moefy/).
#include <chrono>
#include <cstdio>

#include "cli/common.h"
#include "moefy/calibrate.h"
#include "moefy/moefy.h"

namespace flashlm::cli {
namespace {

struct MoefyArgs {
  std::string model, out, calib_file;
  int threads = 0;
  int64_t calib_tokens = 4096;
  int64_t calib_ctx = 512;
  moefy::MoefyOptions opts;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_moefy(const MoefyArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::optional<std::string> calib_text = read_text_file(a.calib_file);
  if (!calib_text) return 1;
  Result<std::unique_ptr<Model>> m = Model::load(a.model);
  if (!m) {
    print_error(m.message());
    return 1;
  }
  const Model& model = **m;
  Status st = moefy::check_options(model.file(), model.config(), a.opts);
  if (!st) {
    print_error(st.message());
    return 1;
  }
  Result<Tokenizer> tok = Tokenizer::from_gguf(model.file());
  if (!tok) {
    print_error("'" + a.model + "': " + tok.message());
    return 1;
  }
  const std::vector<int32_t> tokens = tok->encode(*calib_text, false, false);
  moefy::CalibrationOptions co;
  co.max_tokens = a.calib_tokens;
  co.n_ctx = a.calib_ctx;
  co.n_threads = a.threads;
  note_thread_cap(a.threads);
  Result<moefy::CalibrationData> calib = moefy::calibrate(model, tokens, tok->add_bos() ? tok->bos() : -1, co);
  if (!calib) {
    print_error(calib.message());
    return 1;
  }
  std::fprintf(stderr, "moefy: calibration: %lld tokens in %.1f s\n", static_cast<long long>(calib->n_tokens),
               seconds_since(t0));
  Result<std::vector<moefy::LayerPlan>> plans = moefy::plan_layers(model.file(), model.config(), *calib, a.opts);
  if (!plans) {
    print_error(plans.message());
    return 1;
  }
  double mean = 0.0, mean_share = 0.0;
  for (size_t il = 0; il < plans->size(); ++il) {
    const moefy::LayerPlan& p = (*plans)[il];
    std::fprintf(stderr, "moefy: layer %2zu: router top-%d: %.3f of the best top-%d mass, %.3f of all expert mass (held out)\n",
                 il, a.opts.n_used, p.captured, a.opts.n_used, p.routed_share);
    mean += p.captured / static_cast<double>(plans->size());
    mean_share += p.routed_share / static_cast<double>(plans->size());
  }
  std::fprintf(stderr, "moefy: mean over layers: %.3f of the best top-k mass, %.3f of all expert mass; routers done at %.1f s\n",
               mean, mean_share, seconds_since(t0));
  st = moefy::write_moe(model.file(), model.config(), *plans, a.opts, a.out);
  if (!st) {
    print_error(st.message());
    return 1;
  }
  std::fprintf(stderr, "moefy: wrote '%s' (%d experts, top-%d, shared %lld) in %.1f s\n", a.out.c_str(),
               a.opts.n_expert, a.opts.n_used, static_cast<long long>(a.opts.n_shared), seconds_since(t0));
  return 0;
}

}  // namespace

void add_moefy(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MoefyArgs>();
  CLI::App* sub = app.add_subcommand("moefy", "turn a dense model into a mixture-of-experts one");
  sub->add_option("-m,--model", args->model, "dense GGUF model")->required();
  sub->add_option("-o,--output", args->out, "MoE GGUF to write")->required();
  sub->add_option("-f,--file", args->calib_file, "calibration text")->required();
  sub->add_option("--experts", args->opts.n_expert, "experts per layer")->required()->check(CLI::Range(2, 1024));
  sub->add_option("--top-k", args->opts.n_used, "experts used per token")->required()->check(CLI::Range(1, 1024));
  sub->add_option("--shared-expert", args->opts.n_shared, "neurons in an always-on shared expert (0: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  sub->add_option("--adaptive-threshold", args->opts.adaptive_threshold,
                  "per token, the fewest top experts whose router probabilities reach this mass (0: off)")
      ->check(CLI::Range(0.0f, 1.0f));
  sub->add_option("--calib-tokens", args->calib_tokens, "calibration tokens kept")->check(CLI::Range(int64_t{16}, int64_t{1} << 20));
  sub->add_option("--calib-ctx", args->calib_ctx, "tokens per calibration chunk")->check(CLI::Range(int64_t{2}, int64_t{1} << 16));
  sub->add_option("--seed", args->opts.seed, "clustering seed");
  sub->add_option("-t,--threads", args->threads, "threads (0: the CPUs this process may use)")->check(CLI::Range(0, 1024));
  sub->final_callback([args, exit_code] { *exit_code = run_moefy(*args); });
}

}  // namespace flashlm::cli
