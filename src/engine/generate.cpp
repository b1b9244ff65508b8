#include "engine/generate.h"

#include <chrono>

namespace flashlm {
namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Status generate(Runner& runner, int seq, const Tokenizer& tok, std::span<const int32_t> prompt,
                const GenerateOptions& opts, const std::function<bool(std::string_view)>& on_text,
                GenerateStats* stats) {
  Status st = opts.sampling.validate();
  if (!st) return st;
  if (prompt.empty()) return Status::error("the prompt is empty (no tokens)");
  Sampler sampler(opts.sampling);
  for (int32_t t : prompt) sampler.accept(t);
  StreamDecoder decoder(tok);
  StopMatcher stops(opts.stop);
  const int64_t n_vocab = runner.model().config().n_vocab;

  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits;
  st = runner.eval(seq, prompt, false, &logits);
  if (!st) return st;
  stats->n_prompt = static_cast<int64_t>(prompt.size());
  stats->prompt_ms = ms_since(t0);
  stats->finish_reason = "length";

  t0 = std::chrono::steady_clock::now();
  bool cancelled = false;
  for (int64_t i = 0; opts.n_predict < 0 || i < opts.n_predict; ++i) {
    const int32_t id = sampler.sample(logits.data(), static_cast<int32_t>(n_vocab));
    sampler.accept(id);
    if (!opts.ignore_eos && tok.is_eog(id)) {
      stats->finish_reason = "stop";
      break;
    }
    stats->generated.push_back(id);
    ++stats->n_generated;
    StopMatcher::Out out = stops.feed(decoder.push(id));
    if (!out.emit.empty() && !on_text(out.emit)) {
      cancelled = true;
      break;
    }
    if (out.stopped) {
      stats->finish_reason = "stop";
      break;
    }
    if (runner.seq_len(seq) >= runner.n_ctx()) break;  // context full: "length"
    if (opts.n_predict >= 0 && i + 1 >= opts.n_predict) break;
    const int32_t next[1] = {id};
    st = runner.eval(seq, next, false, &logits);
    if (!st) return st;
  }
  if (!cancelled && !stops.stopped()) {
    std::string rest = stops.feed(decoder.flush()).emit;
    rest += stops.flush();
    if (!rest.empty()) on_text(rest);
  }
  stats->gen_ms = ms_since(t0);
  return Status::ok();
}

}  // namespace flashlm
