// flashlm quantize: a model file with its weight matrices in another type (factory/quantize.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "cli/common.h"
#include "factory/imatrix.h"
#include "factory/quantize.h"
#include "hf/hf_model.h"
#include "quant/quant.h"

namespace flashlm::cli {
namespace {

struct QuantizeArgs {
  std::string model, out, type, imatrix;
  int threads = 0;
  bool pure = false;
};

int run_quantize(const QuantizeArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  Result<factory::QuantType> to = factory::parse_quant_type(a.type);
  if (!to) {
    print_error(to.message());
    return 1;
  }
  Result<gguf::File> in = hf::open_model(a.model);
  if (!in) {
    print_error("'" + a.model + "': " + in.message());
    return 1;
  }
  std::optional<factory::Imatrix> imatrix;
  if (!a.imatrix.empty()) {
    Result<factory::Imatrix> m = factory::load_imatrix(a.imatrix);
    if (!m) {
      print_error(m.message());
      return 1;
    }
    imatrix = std::move(m).value();
    std::fprintf(stderr, "quantize: imatrix '%s': %zu entries, %u chunks of %u tokens\n", a.imatrix.c_str(),
                 imatrix->entries.size(), imatrix->chunk_count, imatrix->chunk_size);
  }
  note_thread_cap(a.threads);
  factory::QuantizeOptions opts;
  opts.imatrix = imatrix ? &*imatrix : nullptr;
  opts.imatrix_path = a.imatrix;
  opts.n_threads = a.threads;
  opts.pure = a.pure;
  // One line per tensor, like llama-quantize; on a terminal the line is rewritten.
  const bool tty = isatty(STDERR_FILENO) != 0;
  opts.progress = [tty](const factory::QuantizeProgress& p) {
    const gguf::TensorInfo& t = *p.tensor->src;
    std::fprintf(stderr, "%s[%4zu/%4zu] %-32s %-5s -> %-5s%s%s", tty ? "\r" : "", p.index, p.n_tensors,
                 t.name.c_str(), type_traits(t.dtype).name, type_traits(p.tensor->type).name,
                 p.tensor->weighted ? " (imatrix)" : "", tty && p.index < p.n_tensors ? "" : "\n");
  };
  if (Status st = factory::quantize_model(*in, *to, a.out, opts); !st) {
    print_error(st.message());
    return 1;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "quantize: wrote '%s' (%s) in %.1f s\n", a.out.c_str(), to->name.c_str(), s);
  return 0;
}

}  // namespace

void add_quantize(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* sub = app.add_subcommand("quantize", "write a model with its weight matrices in another type");
  sub->add_option("-m,--model", args->model, "input GGUF model or Hugging Face model directory")->required();
  sub->add_option("-o,--output", args->out, "GGUF file to write")->required();
  sub->add_option("--type", args->type,
                  "F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_1, Q5_0, Q4_K_M, Q4_K_S, Q4_1, Q4_0, Q3_K_L, "
                  "Q3_K_M, Q3_K_S, Q2_K or Q2_K_S (llama-quantize's names and mixes)")
      ->required();
  sub->add_option("--imatrix", args->imatrix,
                  "importance matrix (flashlm imatrix or llama-imatrix, GGUF or .dat) for weighted rounding");
  sub->add_flag("--pure", args->pure, "every weight matrix in the base type (llama-quantize --pure)");
  sub->add_option("-t,--threads", args->threads, "threads (0: the CPUs this process may use)")->check(CLI::Range(0, 1024));
  sub->final_callback([args, exit_code] { *exit_code = run_quantize(*args); });
}

}  // namespace flashlm::cli
