#include "models/weights.h"

#include "quant/quant.h"

namespace flashlm {
namespace {
std::string layer_name(int layer, const std::string& suffix) {
  return "blk." + std::to_string(layer) + "." + suffix;
}
}  // namespace

Status WeightLoader::get(const std::string& name, int64_t ne0, int64_t ne1, TensorView* out) const {
  const gguf::TensorInfo* t = f_.find_tensor(name);
  if (t == nullptr) return Status::error("missing tensor '" + name + "'");
  if ((ne0 != 0 && t->ne[0] != ne0) || (ne1 != 0 && t->ne[1] != ne1) || t->ne[2] != 1 || t->ne[3] != 1) {
    return Status::error("tensor '" + name + "' has shape [" + std::to_string(t->ne[0]) + ", " +
                         std::to_string(t->ne[1]) + ", " + std::to_string(t->ne[2]) + ", " + std::to_string(t->ne[3]) +
                         "], expected [" + std::to_string(ne0) + ", " + std::to_string(ne1) + "]");
  }
  if (type_traits(t->dtype).to_float == nullptr) {
    return Status::error("tensor '" + name + "' has type " + std::string(type_traits(t->dtype).name) +
                         " which cannot be computed with yet");
  }
  *out = t->view();
  return Status::ok();
}

Status WeightLoader::get_layer(int layer, const std::string& suffix, int64_t ne0, int64_t ne1, TensorView* out) const {
  return get(layer_name(layer, suffix), ne0, ne1, out);
}

Status WeightLoader::get_layer_3d(int layer, const std::string& suffix, int64_t ne0, int64_t ne1, int64_t ne2,
                                  TensorView* out) const {
  const std::string name = layer_name(layer, suffix);
  const gguf::TensorInfo* t = f_.find_tensor(name);
  if (t == nullptr) return Status::error("missing tensor '" + name + "'");
  if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != 1) {
    return Status::error("tensor '" + name + "' has shape [" + std::to_string(t->ne[0]) + ", " +
                         std::to_string(t->ne[1]) + ", " + std::to_string(t->ne[2]) + ", " + std::to_string(t->ne[3]) +
                         "], expected [" + std::to_string(ne0) + ", " + std::to_string(ne1) + ", " +
                         std::to_string(ne2) + "]");
  }
  if (type_traits(t->dtype).to_float == nullptr) {
    return Status::error("tensor '" + name + "' has type " + std::string(type_traits(t->dtype).name) +
                         " which cannot be computed with yet");
  }
  *out = t->view();
  return Status::ok();
}

TensorView slice_matrix(const TensorView& stack, int64_t e) {
  TensorView v = stack;
  v.data = stack.row_ptr_mut(0, e);
  v.ne[2] = 1;
  v.n_dims = 2;
  return v;
}

Status WeightLoader::get_f32_vec(const std::string& name, int64_t n, TensorView* out) const {
  Status st = get(name, n, 1, out);
  if (!st) return st;
  if (out->dtype != DType::F32) return Status::error("tensor '" + name + "' must be f32");
  return Status::ok();
}

Status WeightLoader::get_layer_f32_vec(int layer, const std::string& suffix, int64_t n, TensorView* out) const {
  return get_f32_vec(layer_name(layer, suffix), n, out);
}

namespace {

Status load_moe_layer(const WeightLoader& ld, int i, int64_t n_embd, const MoeConfig& m, LayerWeights* lw) {
  const int64_t n_ff = m.n_ff_exp, n_exp = m.n_expert;
  TensorView gate, up, down;
  Status st;
  if (!(st = ld.get_layer(i, "ffn_gate_inp.weight", n_embd, n_exp, &lw->moe.router))) return st;
  if (!(st = ld.get_layer_3d(i, "ffn_gate_exps.weight", n_embd, n_ff, n_exp, &gate))) return st;
  if (!(st = ld.get_layer_3d(i, "ffn_up_exps.weight", n_embd, n_ff, n_exp, &up))) return st;
  if (!(st = ld.get_layer_3d(i, "ffn_down_exps.weight", n_ff, n_embd, n_exp, &down))) return st;
  lw->moe.experts.resize(static_cast<size_t>(n_exp));
  for (int64_t e = 0; e < n_exp; ++e) {
    lw->moe.experts[static_cast<size_t>(e)] = {slice_matrix(gate, e), slice_matrix(up, e), slice_matrix(down, e)};
  }
  if (m.n_ff_shexp > 0) {
    const int64_t n_sh = m.n_ff_shexp;
    if (!(st = ld.get_layer(i, "ffn_gate_shexp.weight", n_embd, n_sh, &lw->moe.shexp.gate))) return st;
    if (!(st = ld.get_layer(i, "ffn_up_shexp.weight", n_embd, n_sh, &lw->moe.shexp.up))) return st;
    if (!(st = ld.get_layer(i, "ffn_down_shexp.weight", n_sh, n_embd, &lw->moe.shexp.down))) return st;
  }
  if (m.shexp_gate) {
    if (!(st = ld.get_layer_f32_vec(i, "ffn_gate_inp_shexp.weight", n_embd, &lw->moe.shexp_gate))) return st;
  }
  return Status::ok();
}

}  // namespace

Result<ModelWeights> load_decoder_weights(const gguf::File& f, const ModelConfig& cfg) {
  WeightLoader ld(f);
  ModelWeights w;
  const int64_t n_embd = cfg.n_embd;
  Status st;
  if (!(st = ld.get("token_embd.weight", n_embd, cfg.n_vocab, &w.tok_embd))) return st;
  if (!(st = ld.get_f32_vec("output_norm.weight", n_embd, &w.output_norm))) return st;
  if (cfg.tied_embeddings) {
    w.output = w.tok_embd;
  } else if (!(st = ld.get("output.weight", n_embd, cfg.n_vocab, &w.output))) {
    return st;
  }
  if (ld.has("rope_freqs.weight")) {
    if (!(st = ld.get_f32_vec("rope_freqs.weight", cfg.n_rot / 2, &w.rope_freqs))) return st;
  }

  w.layers.resize(static_cast<size_t>(cfg.n_layer));
  for (int i = 0; i < cfg.n_layer; ++i) {
    const LayerConfig& lc = cfg.layers[static_cast<size_t>(i)];
    LayerWeights& lw = w.layers[static_cast<size_t>(i)];
    const int64_t q_dim = static_cast<int64_t>(lc.n_head) * lc.head_dim;
    const int64_t kv_dim = static_cast<int64_t>(lc.n_head_kv) * lc.head_dim;
    const bool dense = lc.ffn == FfnKind::kDense;
    const Status checks[] = {
        ld.get_layer_f32_vec(i, "attn_norm.weight", n_embd, &lw.attn_norm),
        ld.get_layer(i, "attn_q.weight", n_embd, q_dim, &lw.wq),
        ld.get_layer(i, "attn_k.weight", n_embd, kv_dim, &lw.wk),
        ld.get_layer(i, "attn_v.weight", n_embd, kv_dim, &lw.wv),
        ld.get_layer(i, "attn_output.weight", q_dim, n_embd, &lw.wo),
        lc.attn_bias ? ld.get_layer_f32_vec(i, "attn_q.bias", q_dim, &lw.bq) : Status::ok(),
        lc.attn_bias ? ld.get_layer_f32_vec(i, "attn_k.bias", kv_dim, &lw.bk) : Status::ok(),
        lc.attn_bias ? ld.get_layer_f32_vec(i, "attn_v.bias", kv_dim, &lw.bv) : Status::ok(),
        lc.qk_norm ? ld.get_layer_f32_vec(i, "attn_q_norm.weight", lc.head_dim, &lw.q_norm) : Status::ok(),
        lc.qk_norm ? ld.get_layer_f32_vec(i, "attn_k_norm.weight", lc.head_dim, &lw.k_norm) : Status::ok(),
        lc.post_attn_norm ? ld.get_layer_f32_vec(i, "post_attention_norm.weight", n_embd, &lw.post_attn_norm)
                          : Status::ok(),
        ld.get_layer_f32_vec(i, "ffn_norm.weight", n_embd, &lw.ffn_norm),
        dense ? ld.get_layer(i, "ffn_gate.weight", n_embd, lc.n_ff, &lw.ffn.gate) : Status::ok(),
        dense ? ld.get_layer(i, "ffn_up.weight", n_embd, lc.n_ff, &lw.ffn.up) : Status::ok(),
        dense ? ld.get_layer(i, "ffn_down.weight", lc.n_ff, n_embd, &lw.ffn.down) : Status::ok(),
        lc.post_ffn_norm ? ld.get_layer_f32_vec(i, "post_ffw_norm.weight", n_embd, &lw.post_ffn_norm) : Status::ok(),
    };
    for (const Status& s : checks) {
      if (!s) return s;
    }
  }
  for (int i = 0; i < cfg.n_layer; ++i) {
    const LayerConfig& lc = cfg.layers[static_cast<size_t>(i)];
    if (lc.ffn != FfnKind::kMoe) continue;
    if (!(st = load_moe_layer(ld, i, n_embd, lc.moe, &w.layers[static_cast<size_t>(i)]))) return st;
  }
  return w;
}

Status place_weights(const ComputeBackend& backend, ModelWeights* w) {
  auto place = [&backend](TensorView* v) -> Status {
    if (v->data == nullptr) return Status::ok();  // optional weight not in this model
    Result<TensorView> p = backend.place(*v);
    if (!p) return p.status();
    *v = p.value();
    return Status::ok();
  };
  auto place_ffn = [&place](FfnWeights* f) -> Status {
    for (TensorView* v : {&f->gate, &f->up, &f->down}) {
      if (Status st = place(v); !st) return st;
    }
    return Status::ok();
  };
  for (TensorView* v : {&w->tok_embd, &w->output_norm, &w->output, &w->rope_freqs}) {
    if (Status st = place(v); !st) return st;
  }
  for (LayerWeights& l : w->layers) {
    for (TensorView* v : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.q_norm, &l.k_norm,
                          &l.post_attn_norm, &l.ffn_norm, &l.post_ffn_norm, &l.moe.router, &l.moe.shexp_gate}) {
      if (Status st = place(v); !st) return st;
    }
    if (Status st = place_ffn(&l.ffn); !st) return st;
    if (Status st = place_ffn(&l.moe.shexp); !st) return st;
    for (FfnWeights& e : l.moe.experts) {
      if (Status st = place_ffn(&e); !st) return st;
    }
  }
  return Status::ok();
}

}  // namespace flashlm
