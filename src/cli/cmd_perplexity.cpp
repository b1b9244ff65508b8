// flashlm perplexity: llama.cpp's method, so figures are comparable. The text is split
// into chunks of n_ctx tokens; each chunk starts with BOS (when the model uses one) and
// is evaluated from scratch; only its second half is scored, so every scored token sees
// at least n_ctx/2 tokens of context. With --kl-save the base model's scored positions
// are stored (factory/kl_divergence.h); with --kl-base a candidate is scored against them.
#include <cmath>
#include <cstdio>
#include <optional>

#include "cli/common.h"
#include "factory/kl_divergence.h"
#include "kernels/cpu/ops.h"

namespace flashlm::cli {
namespace {

struct PplArgs {
  CommonArgs common;
  std::string file;
  int chunks = -1;
  std::string kl_save, kl_base;
  int kl_top = 256;
};

int perplexity(PplArgs a) {
  std::optional<factory::KlBase> kl_base;
  if (!a.kl_base.empty()) {
    Result<factory::KlBase> b = factory::load_kl_base(a.kl_base);
    if (!b) {
      print_error(b.message());
      return 1;
    }
    if (a.common.ctx != 0 && a.common.ctx != b->n_ctx) {
      print_error("-c " + std::to_string(a.common.ctx) + " differs from the base run's " + std::to_string(b->n_ctx));
      return 1;
    }
    a.common.ctx = b->n_ctx;
    kl_base = std::move(b).value();
  }
  if (a.common.ctx == 0) a.common.ctx = 512;
  std::optional<std::string> read = read_text_file(a.file);
  if (!read) return 1;
  std::string text = std::move(*read);
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
  int64_t n_chunk = a.chunks > 0 ? std::min<int64_t>(a.chunks, n_chunk_max) : n_chunk_max;
  const int64_t n_vocab = l->model->config().n_vocab;
  factory::KlBase kl_out;
  kl_out.n_vocab = static_cast<uint32_t>(n_vocab);
  kl_out.n_ctx = static_cast<uint32_t>(n_ctx);
  kl_out.top_k = static_cast<uint32_t>(std::min<int64_t>(a.kl_top, n_vocab));
  std::optional<factory::KlAccumulator> kl;
  if (kl_base) {
    if (kl_base->n_vocab != n_vocab) {
      print_error("the model's vocabulary (" + std::to_string(n_vocab) + ") differs from the base's (" +
                  std::to_string(kl_base->n_vocab) + ")");
      return 1;
    }
    const auto base_chunks = static_cast<int64_t>(kl_base->tokens.size()) / n_ctx;
    if (base_chunks > n_chunk_max) {
      print_error("the text is shorter than the base run's (" + std::to_string(base_chunks) + " chunks)");
      return 1;
    }
    n_chunk = a.chunks > 0 ? std::min<int64_t>(a.chunks, base_chunks) : base_chunks;  // a prefix of the base's
    kl.emplace(*kl_base);
  }
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
    if (kl_base && !std::equal(chunk.begin(), chunk.end(), kl_base->tokens.begin() + c * n_ctx)) {
      print_error("chunk " + std::to_string(c + 1) + " has other tokens than the base run's: another text or tokenizer");
      return 1;
    }
    if (!a.kl_save.empty()) kl_out.tokens.insert(kl_out.tokens.end(), chunk.begin(), chunk.end());
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
      const int32_t next = chunk[static_cast<size_t>(j + 1)];
      nll += ops::logsumexp(row, n_vocab) - row[next];
      if (!a.kl_save.empty()) kl_out.add(row, next);
      if (kl) {
        if (Status ks = kl->add(static_cast<size_t>(count), row); !ks) {
          print_error(ks.message());
          return 1;
        }
      }
      ++count;
    }
    std::fprintf(stderr, "[%lld]%.4f%s", static_cast<long long>(c + 1), std::exp(nll / static_cast<double>(count)),
                 c + 1 == n_chunk ? "\n" : ",");
  }
  std::printf("PPL = %.4f\n", std::exp(nll / static_cast<double>(count)));
  if (!a.kl_save.empty()) {
    if (Status st = factory::save_kl_base(a.kl_save, kl_out); !st) {
      print_error(st.message());
      return 1;
    }
    std::fprintf(stderr, "perplexity: saved %zu positions (top %u log-probabilities each) to '%s'\n",
                 kl_out.n_positions(), kl_out.top_k, a.kl_save.c_str());
  }
  if (kl) {
    const factory::KlSummary k = kl->summary();
    std::printf("KL divergence vs base: mean %.6f, p90 %.6f, p99 %.6f, max %.6f over %zu positions\n", k.kl_mean,
                k.kl_p90, k.kl_p99, k.kl_max, k.n);
    std::printf("top-1 agreement with base: %.2f%%\n", 100.0 * k.top1_agree);
    std::printf("PPL base = %.4f, PPL = %.4f, ratio = %.4f\n", k.ppl_base, k.ppl, k.ppl / k.ppl_base);
  }
  return 0;
}

}  // namespace

void add_perplexity(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<PplArgs>();
  CLI::App* sub = app.add_subcommand("perplexity", "perplexity of a text file (llama.cpp's method)");
  add_common_flags(sub, &args->common);
  sub->add_option("-f,--file", args->file, "text file")->required();
  sub->add_option("--chunks", args->chunks, "score at most this many chunks (-1: all)");
  CLI::Option* save = sub->add_option("--kl-save", args->kl_save,
                                      "store this (base) model's log-probabilities for --kl-base runs");
  sub->add_option("--kl-base", args->kl_base,
                  "report KL divergence, top-1 agreement and perplexity ratio against a --kl-save file")
      ->excludes(save);
  sub->add_option("--kl-top", args->kl_top, "log-probabilities kept per position by --kl-save")
      ->check(CLI::Range(1, 1024))
      ->needs(save);
  sub->final_callback([args, exit_code] { *exit_code = perplexity(*args); });
}

}  // namespace flashlm::cli
