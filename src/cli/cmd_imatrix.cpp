// flashlm imatrix: the importance matrix of a model on calibration text, in llama.cpp's
// file format (factory/imatrix.h), for flashlm quantize --imatrix or llama-quantize.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "factory/activations.h"
#include "factory/imatrix.h"

namespace flashlm::cli {
namespace {

struct ImatrixArgs {
  std::string model, file, out = "imatrix.gguf", format = "gguf";
  int64_t ctx = 512;
  int64_t chunks = 0;
  int threads = 0;
};

int run_imatrix(const ImatrixArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  if (std::filesystem::equivalent(a.model, a.out, ec)) {
    print_error("the output '" + a.out + "' is the model file; write to another path");
    return 1;
  }
  std::unique_ptr<Calibration> c = run_calibration("imatrix", a.model, a.file, a.ctx, a.chunks, a.threads);
  if (!c) return 1;
  const factory::ActivationStats& stats = c->stats;
  const factory::Imatrix m = factory::imatrix_from_stats(stats, a.file);
  if (Status st = factory::save_imatrix(a.out, m, a.format == "dat"); !st) {
    print_error(st.message());
    return 1;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "imatrix: %zu matrices, %lld chunks of %lld tokens, written to '%s' (%s) in %.1f s\n",
               m.entries.size(), static_cast<long long>(stats.n_chunks), static_cast<long long>(a.ctx),
               a.out.c_str(), a.format.c_str(), s);
  return 0;
}

}  // namespace

void add_imatrix(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ImatrixArgs>();
  CLI::App* sub = app.add_subcommand("imatrix", "collect an importance matrix on calibration text (llama.cpp's format)");
  sub->add_option("-m,--model", args->model, "GGUF model")->required();
  sub->add_option("-f,--file", args->file, "calibration text")->required();
  sub->add_option("-o,--output", args->out, "file to write (default imatrix.gguf)");
  sub->add_option("--output-format", args->format, "gguf (llama-imatrix's default) or dat (its legacy format)")
      ->check(CLI::IsMember({"gguf", "dat"}));
  sub->add_option("-c,--ctx", args->ctx, "tokens per chunk (default 512)")->check(CLI::Range(int64_t{2}, int64_t{1} << 16));
  sub->add_option("--chunks", args->chunks, "chunks to process (default: the whole text)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  sub->add_option("-t,--threads", args->threads, "threads (0: the CPUs this process may use)")->check(CLI::Range(0, 1024));
  sub->final_callback([args, exit_code] { *exit_code = run_imatrix(*args); });
}

}  // namespace flashlm::cli
