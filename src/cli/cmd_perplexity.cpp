// flashlm perplexity: llama.cpp's method, so figures are comparable. The text is split
// into chunks of n_ctx tokens; each chunk starts with BOS (when the model uses one) and
// is evaluated from scratch; only its second half is scored, so every scored token sees
// at least n_ctx/2 tokens of context.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "kernels/cpu/ops.h"

namespace flashlm::cli {
namespace {

struct PplArgs {
  CommonArgs common;
  std::string file;
  int chunks = -1;
};

int perplexity(PplArgs a) {
  if (a.common.ctx == 0) a.common.ctx = 512;
  std::ifstream in(a.file, std::ios::binary);
  if (!in) {
    print_error("cannot read '" + a.file + "'");
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::unique_ptr<Loaded> l = load(a.common, LoadFor::kRunner);
  if (!l) return 1;
  const Tokenizer& tok = *l->tok;
  Runner& runner = *l->runner;
  const int64_t n_ctx = runner.n_ctx();
  const std::vector<int32_t> tokens = tok.encode(text, true, false);
  const int64_t n_chunk_max = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (n_chunk_max < 1) {
    print_error("the text has " + std::to_string(tokens.size()) + " tokens; at least 2 * n_ctx = " +
                std::to_string(2 * n_ctx) + " are needed");
    return 1;
  }
  const int64_t n_chunk = a.chunks > 0 ? std::min<int64_t>(a.chunks, n_chunk_max) : n_chunk_max;
  const int64_t n_vocab = l->model->config().n_vocab;
  const int64_t first = n_ctx / 2;
  std::fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %lld, scoring positions %lld..%lld\n", tokens.size(),
               static_cast<long long>(n_chunk), static_cast<long long>(n_ctx), static_cast<long long>(first),
               static_cast<long long>(n_ctx - 2));
  double nll = 0.0;
  int64_t count = 0;
  std::vector<float> logits;
  const int seq = runner.seq_new();
  for (int64_t c = 0; c < n_chunk; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (tok.add_bos() && tok.bos() >= 0) chunk[0] = tok.bos();
    runner.seq_truncate(seq, 0);
    // The first half only provides context; its logits are not needed.
    std::vector<float> unused;
    Status st = runner.eval(seq, std::span<const int32_t>(chunk.data(), static_cast<size_t>(first)), false, &unused);
    if (st) st = runner.eval(seq, std::span<const int32_t>(chunk.data() + first, static_cast<size_t>(n_ctx - first)), true, &logits);
    if (!st) {
      print_error(st.message());
      return 1;
    }
    for (int64_t j = first; j < n_ctx - 1; ++j) {
      const float* row = logits.data() + (j - first) * n_vocab;
      nll += ops::logsumexp(row, n_vocab) - row[chunk[static_cast<size_t>(j + 1)]];
      ++count;
    }
    std::fprintf(stderr, "[%lld]%.4f%s", static_cast<long long>(c + 1), std::exp(nll / static_cast<double>(count)),
                 c + 1 == n_chunk ? "\n" : ",");
  }
  std::printf("PPL = %.4f\n", std::exp(nll / static_cast<double>(count)));
  return 0;
}

}  // namespace

void add_perplexity(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<PplArgs>();
  CLI::App* sub = app.add_subcommand("perplexity", "perplexity of a text file (llama.cpp's method)");
  add_common_flags(sub, &args->common);
  sub->add_option("-f,--file", args->file, "text file")->required();
  sub->add_option("--chunks", args->chunks, "score at most this many chunks (-1: all)");
  sub->final_callback([args, exit_code] { *exit_code = perplexity(*args); });
}

}  // namespace flashlm::cli
