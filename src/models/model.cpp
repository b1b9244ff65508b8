#include "models/model.h"

#include <algorithm>
#include <cmath>

#include "hf/hf_model.h"
#include "models/ffn.h"
#include "models/moe.h"
#include "models/registry.h"

namespace flashlm {

Result<std::unique_ptr<Model>> Model::load(const std::string& path, BackendKind backend,
                                           const std::vector<LoraSpec>& loras, FileBacking weights) {
  // The backend first: a build or machine that cannot run it fails before any file work.
  Result<std::unique_ptr<ComputeBackend>> be = make_backend(backend);
  if (!be) return be.status();
  // A Hugging Face directory is converted in memory (hf/hf_model.h): the bytes
  // `flashlm convert` would write, in huge pages already.
  if (Status st = hf::check_backing(path, weights); !st) return st;
  Result<gguf::File> f = hf::open_model(path, weights);
  if (!f) return f.status();
  Result<ModelConfig> cfg = parse_model_config(*f);
  if (!cfg) return cfg.status().with_context("'" + path + "'");
  Result<ModelWeights> w = load_decoder_weights(*f, *cfg);
  if (!w) return w.status().with_context("'" + path + "'");
  if (Status st = place_weights(**be, &w.value()); !st) return st.with_context("'" + path + "'");
  Result<LoraSet> lora = LoraSet::load(loras, *f, *cfg, *w, **be);
  if (!lora) return lora.status();
  return std::unique_ptr<Model>(new Model(std::move(f.value()), std::move(cfg.value()), std::move(w.value()),
                                          std::move(be.value()), std::move(lora.value())));
}

Model::Model(gguf::File f, ModelConfig cfg, ModelWeights w, std::unique_ptr<ComputeBackend> backend, LoraSet lora)
    : file_(std::move(f)),
      cfg_(std::move(cfg)),
      weights_(std::move(w)),
      backend_(std::move(backend)),
      lora_(std::move(lora)),
      model_id_(compute_model_id(file_)) {
  // Adapters change every K/V they touch: their blocks must never match the base's.
  if (!lora_.empty()) model_id_ = (model_id_ ^ lora_.fingerprint()) * 1099511628211ULL;
  // A forward pass computes each token's RoPE cos/sin once per distinct configuration
  // (Gemma 3: a local and a global base), not once per layer and head. The frequency
  // factors are one tensor per model, so they never tell two layers apart.
  const float* factors = static_cast<const float*>(weights_.rope_freqs.data);  // may be null
  for (const LayerConfig& l : cfg_.layers) {
    size_t i = 0;
    while (i < rope_.size() && !(rope_[i].base == l.rope_base && rope_[i].scale == l.rope_scale)) ++i;
    if (i == rope_.size()) rope_.push_back(RopeSpec{cfg_.n_rot, l.rope_base, l.rope_scale, factors, cfg_.rope_style});
    layer_rope_.push_back(static_cast<int>(i));
  }
  rope_tables_ = backend_->rope_tables(rope_.data(), static_cast<int>(rope_.size()));
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
  s.out_index.resize(static_cast<size_t>(n));
  s.moe.reserve(cfg_, n);
  if (!lora_.empty()) {
    s.lora_h.resize(sz(lora_.max_rank()));
    s.lora_tmp.resize(sz(std::max<int64_t>({q_dim, cfg_.max_kv_dim(), n_ff, cfg_.n_embd})));
  }
  s.capacity = n;
}

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
  const ComputeBackend& be = s.backend != nullptr ? *s.backend : *backend_;
  const ExecContext ctx{&pool, s.batch_invariant};
  const int32_t* pos = batch.pos.data();
  const int32_t* seq = batch.seq.data();

  be.embed(ctx, W.tok_embd, batch.tokens.data(), n, cfg_.embd_scale, s.x.data());
  // Each token's RoPE cos/sin, once per configuration, for every layer and head using it.
  const int64_t n_rot = cfg_.n_rot;
  rope_tables_->fill(ctx, pos, n, s.rope_cs.data());
  for (int il = 0; il < cfg_.n_layer; ++il) {
    const LayerConfig& L = cfg_.layers[static_cast<size_t>(il)];
    const LayerWeights& lw = W.layers[static_cast<size_t>(il)];
    const int64_t hd = L.head_dim;
    const int64_t q_dim = L.n_head * hd;
    const int64_t kv_dim = L.n_head_kv * hd;

    // --- attention ---
    be.rms_norm(ctx, s.x.data(), lw.attn_norm, s.cur.data(), n, n_embd, cfg_.norm_eps);
    const MatmulOut qkv_out[] = {{&lw.wq, s.q.data(), q_dim}, {&lw.wk, s.k.data(), kv_dim}, {&lw.wv, s.v.data(), kv_dim}};
    be.matmul_group(ctx, qkv_out, 3, s.cur.data(), n_embd, n);
    const LayerLora* ll = lora_.empty() ? nullptr : &lora_.layer(il);
    if (ll != nullptr) {
      apply_lora(be, ctx, (*ll)[LoraTarget::kQ], s.cur.data(), n_embd, s.q.data(), q_dim, n, s.lora_h.data(),
                 s.lora_tmp.data());
      apply_lora(be, ctx, (*ll)[LoraTarget::kK], s.cur.data(), n_embd, s.k.data(), kv_dim, n, s.lora_h.data(),
                 s.lora_tmp.data());
      apply_lora(be, ctx, (*ll)[LoraTarget::kV], s.cur.data(), n_embd, s.v.data(), kv_dim, n, s.lora_h.data(),
                 s.lora_tmp.data());
    }
    if (lw.bq.data != nullptr) be.add_bias(ctx, s.q.data(), lw.bq, n, q_dim);
    if (lw.bk.data != nullptr) be.add_bias(ctx, s.k.data(), lw.bk, n, kv_dim);
    if (lw.bv.data != nullptr) be.add_bias(ctx, s.v.data(), lw.bv, n, kv_dim);

    // QK-norm and RoPE per head (the token's cos/sin for this layer's configuration),
    // then K/V into the cache.
    const int rc = layer_rope_[static_cast<size_t>(il)];
    QkvRows qkv;
    qkv.q = s.q.data();
    qkv.k = s.k.data();
    qkv.v = s.v.data();
    qkv.n = n;
    qkv.pos = pos;
    qkv.seq = seq;
    qkv.n_head = L.n_head;
    qkv.n_head_kv = L.n_head_kv;
    qkv.head_dim = L.head_dim;
    qkv.q_norm = L.qk_norm ? static_cast<const float*>(lw.q_norm.data) : nullptr;
    qkv.k_norm = L.qk_norm ? static_cast<const float*>(lw.k_norm.data) : nullptr;
    qkv.norm_eps = cfg_.norm_eps;
    qkv.rope = &rope_[static_cast<size_t>(rc)];
    qkv.rope_cs = s.rope_cs.data() + rc * n * n_rot;
    qkv.kv = &kv;
    qkv.layer = il;
    be.qkv_rows(ctx, qkv);

    // Runs of consecutive positions of one sequence (prompt chunks; decode tokens are
    // runs of one) cut into query tiles, one item per (tile, KV head group).
    AttentionPlanParams plan;
    plan.n_head = L.n_head;
    plan.n_head_kv = L.n_head_kv;
    plan.window = L.sliding_window;
    plan.max_rows = be.attention_tile_rows();
    plan.min_items = pool.size();
    plan_attention(batch, plan, &s.attn_work);
    AttentionCall ac;
    ac.items = s.attn_work.data();
    ac.n_items = s.attn_work.size();
    ac.q = s.q.data();
    ac.out = s.attn.data();
    ac.q_stride = q_dim;
    ac.pos = pos;
    ac.seq = seq;
    ac.n_head = L.n_head;
    ac.n_head_kv = L.n_head_kv;
    ac.head_dim = L.head_dim;
    ac.scale = cfg_.attn_scale > 0.0f ? cfg_.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
    ac.softcap = cfg_.attn_softcap;
    ac.window = L.sliding_window;
    ac.kv = &kv;
    ac.layer = il;
    be.attention(ctx, ac);
    be.matmul(ctx, lw.wo, s.attn.data(), q_dim, s.proj.data(), n_embd, n);
    if (ll != nullptr) {
      apply_lora(be, ctx, (*ll)[LoraTarget::kO], s.attn.data(), q_dim, s.proj.data(), n_embd, n, s.lora_h.data(),
                 s.lora_tmp.data());
    }
    if (L.post_attn_norm) be.rms_norm(ctx, s.proj.data(), lw.post_attn_norm, s.proj.data(), n, n_embd, cfg_.norm_eps);
    be.add(ctx, s.x.data(), s.proj.data(), s.x.data(), n * n_embd);

    // --- feed-forward ---
    be.rms_norm(ctx, s.x.data(), lw.ffn_norm, s.cur.data(), n, n_embd, cfg_.norm_eps);
    if (L.ffn == FfnKind::kMoe) {
      moe_ffn(be, ctx, L.moe, lw.moe, cfg_.act, s.cur.data(), n, n_embd, s.proj.data(), s.moe);
    } else {
      ffn_dense(be, ctx, lw.ffn, cfg_.act, s.cur.data(), n, n_embd, s.proj.data(), s.gate.data(), s.up.data(),
                FfnTap{s.ffn_observer, il}, FfnLora{ll, s.lora_h.data(), s.lora_tmp.data()});
    }
    if (L.post_ffn_norm) be.rms_norm(ctx, s.proj.data(), lw.post_ffn_norm, s.proj.data(), n, n_embd, cfg_.norm_eps);
    be.add(ctx, s.x.data(), s.proj.data(), s.x.data(), n * n_embd);
  }

  // Output rows only where logits are wanted.
  int64_t n_out = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (batch.want_logits[static_cast<size_t>(t)]) s.out_index[static_cast<size_t>(n_out++)] = static_cast<int32_t>(t);
  }
  be.gather_rows(ctx, s.x.data(), n_embd, s.out_index.data(), n_out, s.out_rows.data());
  be.rms_norm(ctx, s.out_rows.data(), W.output_norm, s.out_rows.data(), n_out, n_embd, cfg_.norm_eps);
  if (s.hidden_rows) {
    logits->assign(s.out_rows.begin(), s.out_rows.begin() + n_out * n_embd);
    return Status::ok();
  }
  logits->resize(static_cast<size_t>(n_out * cfg_.n_vocab));
  be.matmul(ctx, W.output, s.out_rows.data(), n_embd, logits->data(), cfg_.n_vocab, n_out);
  if (cfg_.final_softcap > 0.0f) be.softcap(ctx, logits->data(), n_out * cfg_.n_vocab, cfg_.final_softcap);
  return Status::ok();
}

}  // namespace flashlm
