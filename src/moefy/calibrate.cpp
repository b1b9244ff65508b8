#include "moefy/calibrate.h"

#include <algorithm>

#include "kv/kv_cache.h"

namespace flashlm::moefy {
namespace {

// Copies the rows of one forward pass into the per-layer sample arrays; rows before
// `skip` (the chunk's first position, whose activations are atypical) and beyond the
// budget are dropped.
class Recorder : public FfnObserver {
 public:
  Recorder(CalibrationData* d, int64_t max_tokens) : d_(d), max_(max_tokens) {}
  void begin_chunk(int64_t skip) { skip_ = skip; }
  void on_ffn(int layer, const float* input, const float* act, int64_t n) override {
    LayerSamples& L = d_->layers[static_cast<size_t>(layer)];
    const int64_t room = max_ - d_->n_tokens;
    const int64_t take = std::clamp<int64_t>(n - skip_, 0, room);
    const int64_t e = d_->n_embd;
    L.input.insert(L.input.end(), input + skip_ * e, input + (skip_ + take) * e);
    L.act.insert(L.act.end(), act + skip_ * L.n_ff, act + (skip_ + take) * L.n_ff);
    if (layer + 1 == static_cast<int>(d_->layers.size())) d_->n_tokens += take;
  }

 private:
  CalibrationData* d_;
  int64_t max_;
  int64_t skip_ = 0;
};

}  // namespace

Result<CalibrationData> calibrate(const Model& model, const std::vector<int32_t>& tokens, int32_t bos,
                                  const CalibrationOptions& opts) {
  const ModelConfig& cfg = model.config();
  if (opts.n_ctx < 2) return Status::error("calibration context must be at least 2 tokens");
  if (static_cast<int64_t>(tokens.size()) < opts.n_ctx) {
    return Status::error("calibration text has " + std::to_string(tokens.size()) + " tokens; at least " +
                         std::to_string(opts.n_ctx) + " are needed");
  }
  CalibrationData d;
  d.n_embd = cfg.n_embd;
  for (const LayerConfig& l : cfg.layers) {
    LayerSamples s;
    s.n_ff = l.n_ff;
    s.input.reserve(static_cast<size_t>(opts.max_tokens * cfg.n_embd));
    s.act.reserve(static_cast<size_t>(opts.max_tokens * l.n_ff));
    d.layers.push_back(std::move(s));
  }
  Recorder rec(&d, opts.max_tokens);
  ThreadPool pool(opts.n_threads > 0 ? opts.n_threads : usable_cpu_count());
  KvCache kv(model.kv_config(opts.n_ctx, 1, opts.n_ctx));
  ForwardScratch scratch;
  scratch.ffn_observer = &rec;
  Batch batch;
  std::vector<float> logits;
  const int seq = kv.seq_new();
  Status st = kv.seq_prepare(seq, 0, opts.n_ctx);
  if (!st) return st;
  for (size_t c = 0; c + static_cast<size_t>(opts.n_ctx) <= tokens.size() && d.n_tokens < opts.max_tokens;
       c += static_cast<size_t>(opts.n_ctx)) {
    batch.clear();
    for (int64_t p = 0; p < opts.n_ctx; ++p) {
      int32_t t = tokens[c + static_cast<size_t>(p)];
      if (p == 0 && bos >= 0) t = bos;
      batch.add(t, static_cast<int32_t>(p), seq, p + 1 == opts.n_ctx);
    }
    rec.begin_chunk(1);
    st = model.forward(batch, kv, scratch, pool, &logits);
    if (!st) return st.with_context("calibration forward pass");
  }
  return d;
}

}  // namespace flashlm::moefy
