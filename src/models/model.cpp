#include "models/model.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_tiles.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "models/ffn.h"
#include "models/moe.h"
#include "models/registry.h"

namespace flashlm {

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  Result<gguf::File> f = gguf::File::open(path);
  if (!f) return f.status();
  Result<ModelConfig> cfg = parse_model_config(*f);
  if (!cfg) return cfg.status().with_context("'" + path + "'");
  Result<ModelWeights> w = load_decoder_weights(*f, *cfg);
  if (!w) return w.status().with_context("'" + path + "'");
  return std::unique_ptr<Model>(new Model(std::move(f.value()), std::move(cfg.value()), std::move(w.value())));
}

Model::Model(gguf::File f, ModelConfig cfg, ModelWeights w)
    : file_(std::move(f)), cfg_(std::move(cfg)), weights_(std::move(w)), model_id_(compute_model_id(file_)) {
  // A forward pass computes each token's RoPE cos/sin once per distinct configuration
  // (Gemma 3: a local and a global base), not once per layer and head. The frequency
  // factors are one tensor per model, so they never tell two layers apart.
  const float* factors = static_cast<const float*>(weights_.rope_freqs.data);  // may be null
  for (const LayerConfig& l : cfg_.layers) {
    size_t i = 0;
    while (i < rope_.size() && !rope_[i].same_as(cfg_.n_rot, l.rope_base, l.rope_scale)) ++i;
    if (i == rope_.size()) rope_.emplace_back(cfg_.n_rot, l.rope_base, l.rope_scale, factors);
    layer_rope_.push_back(static_cast<int>(i));
  }
}

KvConfig Model::kv_config(int64_t n_ctx, int n_seqs, int64_t step_tokens, int block_size) const {
  KvConfig kc;
  kc.n_layer = cfg_.n_layer;
  kc.kv_dim = cfg_.max_kv_dim();
  kc.block_size = block_size;
  kc.n_blocks = (n_ctx + block_size - 1) / block_size * n_seqs;
  kc.max_seqs = n_seqs;
  kc.model_id = model_id_;
  int max_window = 0;
  for (const LayerConfig& l : cfg_.layers) {
    kc.layer_window.push_back(l.sliding_window);
    max_window = std::max(max_window, l.sliding_window);
  }
  if (max_window > 0) {
    // A local group holds, per running sequence, the blocks its window spans (plus one
    // for misalignment and one it is filling), the step's new tokens, and one sequence's
    // worth more for cached and pinned prefixes.
    if (step_tokens <= 0) step_tokens = n_ctx;
    const int64_t span = (max_window - 1 + block_size - 1) / block_size + 3;
    kc.n_blocks_local = std::min(kc.n_blocks, (n_seqs + 1) * span + (step_tokens + block_size - 1) / block_size);
  }
  return kc;
}

// The root of every KV block hash: blocks computed by other weights must never match.
// The header, metadata and tensor table (names, types, shapes, offsets) and the file size
// identify a GGUF without reading its gigabytes of weights.
uint64_t Model::compute_model_id(const gguf::File& f) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  auto feed = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  };
  const uint64_t size = f.file_size(), data = f.data_offset();
  feed(&size, sizeof size);
  feed(&data, sizeof data);
  for (const auto& [key, value] : f.metadata()) {
    feed(key.data(), key.size());
    const std::string v = value.to_string(16);
    feed(v.data(), v.size());
  }
  for (const gguf::TensorInfo& t : f.tensors()) {
    feed(t.name.data(), t.name.size());
    feed(&t.dtype, sizeof t.dtype);
    feed(t.ne, sizeof t.ne);
    feed(&t.offset, sizeof t.offset);
  }
  return h;
}

void Model::reserve(ForwardScratch& s, int64_t n) const {
  if (s.capacity >= n) return;
  int64_t q_dim = 0, n_ff = 0;
  for (const LayerConfig& l : cfg_.layers) {
    q_dim = std::max<int64_t>(q_dim, static_cast<int64_t>(l.n_head) * l.head_dim);
    n_ff = std::max<int64_t>(n_ff, l.n_ff);
  }
  const auto sz = [n](int64_t d) { return static_cast<size_t>(n * d); };
  s.x.resize(sz(cfg_.n_embd));
  s.cur.resize(sz(cfg_.n_embd));
  s.q.resize(sz(q_dim));
  s.k.resize(sz(cfg_.max_kv_dim()));
  s.v.resize(sz(cfg_.max_kv_dim()));
  s.attn.resize(sz(q_dim));
  s.proj.resize(sz(cfg_.n_embd));
  s.gate.resize(sz(n_ff));
  s.up.resize(sz(n_ff));
  s.out_rows.resize(sz(cfg_.n_embd));
  s.rope_cs.resize(sz(static_cast<int64_t>(rope_.size()) * cfg_.n_rot));
  s.moe.reserve(cfg_, n);
  s.capacity = n;
}

namespace {

void rms_norm_rows(const float* x, const TensorView& w, float* y, int64_t n, int64_t dim, float eps,
                   ThreadPool& pool) {
  const float* wd = static_cast<const float*>(w.data);
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) ops::rms_norm(x + t * dim, wd, y + t * dim, dim, eps);
  });
}

void add_bias(float* y, const TensorView& b, int64_t n, int64_t dim) {
  if (b.data == nullptr) return;
  const float* bd = static_cast<const float*>(b.data);
  for (int64_t t = 0; t < n; ++t) ops::add(y + t * dim, bd, y + t * dim, dim);
}

}  // namespace

Status Model::forward(const Batch& batch, KvCache& kv, ForwardScratch& s, ThreadPool& pool,
                      std::vector<float>* logits) const {
  const int64_t n = batch.size();
  if (n == 0) return Status::ok();
  if (static_cast<int64_t>(batch.pos.size()) != n || static_cast<int64_t>(batch.seq.size()) != n ||
      static_cast<int64_t>(batch.want_logits.size()) != n) {
    return Status::error("batch arrays have different lengths");
  }
  // Validate everything before touching KV state: every run of consecutive positions of
  // a sequence must find the blocks it writes and the ones its queries read (a local
  // group's window).
  int64_t run = 0;
  for (int64_t t = 0; t < n; ++t) {
    const auto i = static_cast<size_t>(t);
    const int32_t tok = batch.tokens[i];
    if (tok < 0 || tok >= cfg_.n_vocab) return Status::error("token id " + std::to_string(tok) + " out of range");
    const int32_t sq = batch.seq[i];
    if (!kv.seq_valid(sq)) return Status::error("batch names unknown KV sequence " + std::to_string(sq));
    if (t + 1 < n && batch.seq[i + 1] == sq && batch.pos[i + 1] == batch.pos[i] + 1) continue;
    const int64_t begin = batch.pos[static_cast<size_t>(run)];
    if (!kv.seq_covers(sq, begin, static_cast<int64_t>(batch.pos[i]) + 1)) {
      return Status::error("positions " + std::to_string(begin) + ".." + std::to_string(batch.pos[i]) +
                           " of KV sequence " + std::to_string(sq) + " have no KV blocks");
    }
    run = t + 1;
  }
  reserve(s, n);

  const int64_t n_embd = cfg_.n_embd;
  const ModelWeights& W = weights_;

  // Token embeddings (dequantized rows), scaled.
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      float* xt = s.x.data() + t * n_embd;
      dequantize_row(W.tok_embd, batch.tokens[static_cast<size_t>(t)], xt);
      if (cfg_.embd_scale != 1.0f) ops::scale(xt, cfg_.embd_scale, n_embd);
    }
  });

  const MatmulOptions mm{s.batch_invariant};
  // Each token's RoPE cos/sin, once per configuration, for every layer and head using it.
  const int64_t n_rot = cfg_.n_rot;
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (size_t c = 0; c < rope_.size(); ++c) {
      float* cs = s.rope_cs.data() + static_cast<int64_t>(c) * n * n_rot;
      for (int64_t t = b; t < e; ++t) rope_[c].cos_sin(batch.pos[static_cast<size_t>(t)], cs + t * n_rot);
    }
  });
  for (int il = 0; il < cfg_.n_layer; ++il) {
    const LayerConfig& L = cfg_.layers[static_cast<size_t>(il)];
    const LayerWeights& lw = W.layers[static_cast<size_t>(il)];
    const int64_t hd = L.head_dim;
    const int64_t q_dim = L.n_head * hd;
    const int64_t kv_dim = L.n_head_kv * hd;

    // --- attention ---
    rms_norm_rows(s.x.data(), lw.attn_norm, s.cur.data(), n, n_embd, cfg_.norm_eps, pool);
    matmul(lw.wq, s.cur.data(), n_embd, s.q.data(), q_dim, n, pool, mm);
    matmul(lw.wk, s.cur.data(), n_embd, s.k.data(), kv_dim, n, pool, mm);
    matmul(lw.wv, s.cur.data(), n_embd, s.v.data(), kv_dim, n, pool, mm);
    add_bias(s.q.data(), lw.bq, n, q_dim);
    add_bias(s.k.data(), lw.bk, n, kv_dim);
    add_bias(s.v.data(), lw.bv, n, kv_dim);

    // QK-norm and RoPE per head (the token's cos/sin for this layer's configuration),
    // then K/V into the cache.
    const float* rope_cs = s.rope_cs.data() + layer_rope_[static_cast<size_t>(il)] * n * n_rot;
    pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
      const float* qn = L.qk_norm ? static_cast<const float*>(lw.q_norm.data) : nullptr;
      const float* kn = L.qk_norm ? static_cast<const float*>(lw.k_norm.data) : nullptr;
      for (int64_t t = b; t < e; ++t) {
        const int64_t p = batch.pos[static_cast<size_t>(t)];
        const float* cs = rope_cs + t * n_rot;
        float* qt = s.q.data() + t * q_dim;
        float* kt = s.k.data() + t * kv_dim;
        for (int h = 0; h < L.n_head; ++h) {
          if (qn) ops::rms_norm(qt + h * hd, qn, qt + h * hd, hd, cfg_.norm_eps);
          ops::rope_apply(qt + h * hd, n_rot, cfg_.rope_style, cs);
        }
        for (int h = 0; h < L.n_head_kv; ++h) {
          if (kn) ops::rms_norm(kt + h * hd, kn, kt + h * hd, hd, cfg_.norm_eps);
          ops::rope_apply(kt + h * hd, n_rot, cfg_.rope_style, cs);
        }
        const int sq = batch.seq[static_cast<size_t>(t)];
        kv_row_store(kv.config().type, kt, kv.k_slot(il, sq, p), kv_dim);
        kv_row_store(kv.config().type, s.v.data() + t * kv_dim, kv.v_slot(il, sq, p), kv_dim);
      }
    });

    AttentionParams ap;
    ap.n_head = L.n_head;
    ap.n_head_kv = L.n_head_kv;
    ap.head_dim = L.head_dim;
    ap.scale = cfg_.attn_scale > 0.0f ? cfg_.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
    ap.softcap = cfg_.attn_softcap;
    // Runs of consecutive positions of one sequence (prompt chunks; decode tokens are
    // runs of one) cut into query tiles, one item per (tile, KV head group); threads take
    // items largest first from a shared counter, as causal tiles differ in cost.
    AttentionPlanParams plan;
    plan.n_head = L.n_head;
    plan.n_head_kv = L.n_head_kv;
    plan.window = L.sliding_window;
    plan.max_rows = kAttnMaxRows;
    plan.min_items = pool.size();
    plan_attention(batch, plan, &s.attn_work);
    std::atomic<size_t> next_item{0};
    pool.parallel_for(pool.size(), [&](int64_t, int64_t, int) {
      for (size_t i = next_item.fetch_add(1, std::memory_order_relaxed); i < s.attn_work.size();
           i = next_item.fetch_add(1, std::memory_order_relaxed)) {
        const AttentionWork& w = s.attn_work[i];
        const auto row = static_cast<size_t>(w.row);
        PagedKvView view;
        view.k = kv.k_layer(il);
        view.v = kv.v_layer(il);
        view.type = kv.config().type;
        view.kv_dim = kv.config().kv_dim;
        view.block_size = kv.block_size();
        view.block_table = kv.block_table(il, batch.seq[row]).data();  // the table of the layer's group
        AttentionQueries qs;
        qs.q = s.q.data() + w.row * q_dim;
        qs.q_stride = q_dim;
        qs.out = s.attn.data() + w.row * q_dim;
        qs.out_stride = q_dim;
        qs.pos0 = batch.pos[row];
        qs.n_q = w.n_q;
        attention_chunk(qs, view, ap, L.sliding_window, w.head_begin, w.head_end);
      }
    });
    matmul(lw.wo, s.attn.data(), q_dim, s.proj.data(), n_embd, n, pool, mm);
    if (L.post_attn_norm) rms_norm_rows(s.proj.data(), lw.post_attn_norm, s.proj.data(), n, n_embd, cfg_.norm_eps, pool);
    ops::add(s.x.data(), s.proj.data(), s.x.data(), n * n_embd);

    // --- feed-forward ---
    rms_norm_rows(s.x.data(), lw.ffn_norm, s.cur.data(), n, n_embd, cfg_.norm_eps, pool);
    if (L.ffn == FfnKind::kMoe) {
      moe_ffn(L.moe, lw.moe, cfg_.act, s.cur.data(), n, n_embd, s.proj.data(), s.moe, pool, mm);
    } else {
      ffn_dense(lw.ffn, cfg_.act, s.cur.data(), n, n_embd, s.proj.data(), s.gate.data(), s.up.data(), pool, mm,
                FfnTap{s.ffn_observer, il});
    }
    if (L.post_ffn_norm) rms_norm_rows(s.proj.data(), lw.post_ffn_norm, s.proj.data(), n, n_embd, cfg_.norm_eps, pool);
    ops::add(s.x.data(), s.proj.data(), s.x.data(), n * n_embd);
  }

  // Output rows only where logits are wanted.
  const int64_t n_out = batch.n_logits();
  int64_t r = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (!batch.want_logits[static_cast<size_t>(t)]) continue;
    ops::rms_norm(s.x.data() + t * n_embd, static_cast<const float*>(W.output_norm.data),
                  s.out_rows.data() + r * n_embd, n_embd, cfg_.norm_eps);
    ++r;
  }
  logits->resize(static_cast<size_t>(n_out * cfg_.n_vocab));
  matmul(W.output, s.out_rows.data(), n_embd, logits->data(), cfg_.n_vocab, n_out, pool, mm);
  if (cfg_.final_softcap > 0.0f) {
    for (float& v : *logits) v = cfg_.final_softcap * std::tanh(v / cfg_.final_softcap);
  }
  return Status::ok();
}

}  // namespace flashlm
