#include "factory/activations.h"

#include <algorithm>
#include <cmath>

#include "backend/observing_backend.h"
#include "kv/kv_cache.h"

namespace flashlm::factory {
namespace {

// "blk.N.<suffix>" -> N when the name ends with suffix, else -1.
int layer_with_suffix(std::string_view name, std::string_view suffix) {
  if (!name.starts_with("blk.") || !name.ends_with(suffix)) return -1;
  int v = 0;
  size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) v = v * 10 + (name[i] - '0');
  return i > 4 && i + 1 + suffix.size() == name.size() && name[i] == '.' ? v : -1;
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 1.0;
}

// Sees one chunk's forward pass at a time. Weights are recognised by where their bytes
// lie in the mapped file (every host backend's views point there).
class Collector final : public ActivationObserver {
 public:
  Collector(const gguf::File& f, int n_layer, ActivationStats* s) : s_(s), inputs_(static_cast<size_t>(n_layer)) {
    for (const gguf::TensorInfo& t : f.tensors()) {
      const bool matrix = t.n_dims >= 2 && t.name.starts_with("blk.");
      const int norm_layer = layer_with_suffix(t.name, "attn_norm.weight");
      if (!matrix && norm_layer < 0 && t.name != "output_norm.weight") continue;
      Span sp{t.data, t.data + t.size_bytes, norm_layer < 0 && !matrix ? n_layer : norm_layer, nullptr, 0};
      if (matrix) {
        MatrixActivations& m = s->matrices[t.name];
        const int64_t n_mat = t.n_dims >= 3 ? t.ne[2] : 1;
        m.n_cols = t.ne[0];
        m.sum_x2.assign(static_cast<size_t>(n_mat * t.ne[0]), 0.0);
        m.count.assign(static_cast<size_t>(n_mat), 0);
        sp.matrix = &m;
        sp.matrix_bytes = t.size_bytes / static_cast<uint64_t>(n_mat);
      }
      spans_.push_back(sp);
    }
    std::sort(spans_.begin(), spans_.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  }

  // The rows whose logits this chunk computes: where the output norm's rows come from.
  void begin_chunk(std::vector<int64_t> out_rows) { out_rows_ = std::move(out_rows); }

  void on_matmul(const TensorView& w, const float* x, int64_t ldx, int64_t n_tok) override {
    const Span* sp = find(w.data);
    if (sp == nullptr || sp->matrix == nullptr) return;
    MatrixActivations& m = *sp->matrix;
    const auto* p = static_cast<const uint8_t*>(w.data);
    const int64_t mat = static_cast<int64_t>(static_cast<uint64_t>(p - sp->begin) / sp->matrix_bytes);
    double* acc = m.sum_x2.data() + mat * m.n_cols;
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* row = x + t * ldx;
      for (int64_t j = 0; j < m.n_cols; ++j) acc[j] += static_cast<double>(row[j]) * row[j];
    }
    m.count[static_cast<size_t>(mat)] += n_tok;
  }

  // A layer's first norm sees its input, which is the previous layer's output; the
  // output norm sees the last layer's output at the logit rows.
  void on_rms_norm(const TensorView& w, const float* x, int64_t n_rows, int64_t dim) override {
    const Span* sp = find(w.data);
    if (sp == nullptr || sp->matrix != nullptr) return;
    const int layer = sp->layer;
    const int n_layer = static_cast<int>(inputs_.size());
    if (layer > 0) {
      const std::vector<float>& prev = inputs_[static_cast<size_t>(layer - 1)];
      const bool output = layer == n_layer;
      for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t src = output ? out_rows_[static_cast<size_t>(r)] : r;
        if ((src + 1) * dim > static_cast<int64_t>(prev.size())) continue;
        s_->layer_cos_sum[static_cast<size_t>(layer - 1)] += cosine(prev.data() + src * dim, x + r * dim, dim);
        ++s_->layer_cos_n[static_cast<size_t>(layer - 1)];
      }
    }
    if (layer < n_layer) inputs_[static_cast<size_t>(layer)].assign(x, x + n_rows * dim);
  }

 private:
  struct Span {
    const uint8_t* begin;
    const uint8_t* end;
    int layer;                   // for norms: the layer (n_layer for the output norm)
    MatrixActivations* matrix;   // for weight matrices
    uint64_t matrix_bytes;       // bytes of one matrix of a stack
  };
  const Span* find(const void* data) const {
    const auto* p = static_cast<const uint8_t*>(data);
    auto it = std::upper_bound(spans_.begin(), spans_.end(), p, [](const uint8_t* v, const Span& s) { return v < s.begin; });
    if (it == spans_.begin()) return nullptr;
    --it;
    return p < it->end ? &*it : nullptr;
  }

  ActivationStats* s_;
  std::vector<Span> spans_;
  std::vector<std::vector<float>> inputs_;  // [n_layer] this chunk's layer inputs
  std::vector<int64_t> out_rows_;
};

}  // namespace

double ActivationStats::block_influence(int layer) const {
  const auto l = static_cast<size_t>(layer);
  if (l >= layer_cos_n.size() || layer_cos_n[l] == 0) return 0.0;
  return 1.0 - layer_cos_sum[l] / static_cast<double>(layer_cos_n[l]);
}

Result<ActivationStats> collect_activations(const Model& model, std::span<const int32_t> tokens, int32_t bos,
                                            const CollectOptions& opts) {
  const ModelConfig& cfg = model.config();
  if (opts.n_ctx < 2) return Status::error("the calibration context must be at least 2 tokens");
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / opts.n_ctx;
  if (opts.max_chunks > 0) n_chunks = std::min(n_chunks, opts.max_chunks);
  if (n_chunks < 1) {
    return Status::error("the calibration text has " + std::to_string(tokens.size()) + " tokens; a chunk needs " +
                         std::to_string(opts.n_ctx));
  }
  ActivationStats s;
  s.n_ctx = opts.n_ctx;
  s.layer_cos_sum.assign(static_cast<size_t>(cfg.n_layer), 0.0);
  s.layer_cos_n.assign(static_cast<size_t>(cfg.n_layer), 0);
  Collector col(model.file(), cfg.n_layer, &s);
  const ObservingBackend observing(model.backend(), col);

  ThreadPool pool(opts.n_threads > 0 ? opts.n_threads : usable_cpu_count());
  KvCache kv(model.kv_config(opts.n_ctx, 1, opts.n_ctx));
  ForwardScratch scratch;
  scratch.backend = &observing;
  Batch batch;
  std::vector<float> logits;
  const int seq = kv.seq_new();
  if (Status st = kv.seq_prepare(seq, 0, opts.n_ctx); !st) return st;
  for (int64_t c = 0; c < n_chunks; ++c) {
    batch.clear();
    for (int64_t p = 0; p < opts.n_ctx; ++p) {
      int32_t t = tokens[static_cast<size_t>(c * opts.n_ctx + p)];
      if (p == 0 && bos >= 0) t = bos;
      batch.add(t, static_cast<int32_t>(p), seq, p + 1 == opts.n_ctx);
    }
    col.begin_chunk({opts.n_ctx - 1});
    if (Status st = model.forward(batch, kv, scratch, pool, &logits); !st) {
      return st.with_context("calibration chunk " + std::to_string(c + 1));
    }
    s.n_chunks = c + 1;
    s.n_tokens += opts.n_ctx;
    if (opts.progress) opts.progress(c + 1, n_chunks);
  }
  return s;
}

}  // namespace flashlm::factory
