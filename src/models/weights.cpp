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

Status WeightLoader::get_f32_vec(const std::string& name, int64_t n, TensorView* out) const {
  Status st = get(name, n, 1, out);
  if (!st) return st;
  if (out->dtype != DType::F32) return Status::error("tensor '" + name + "' must be f32");
  return Status::ok();
}

Status WeightLoader::get_layer_f32_vec(int layer, const std::string& suffix, int64_t n, TensorView* out) const {
  return get_f32_vec(layer_name(layer, suffix), n, out);
}

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
        ld.get_layer(i, "ffn_gate.weight", n_embd, lc.n_ff, &lw.ffn.gate),
        ld.get_layer(i, "ffn_up.weight", n_embd, lc.n_ff, &lw.ffn.up),
        ld.get_layer(i, "ffn_down.weight", lc.n_ff, n_embd, &lw.ffn.down),
        lc.post_ffn_norm ? ld.get_layer_f32_vec(i, "post_ffw_norm.weight", n_embd, &lw.post_ffn_norm) : Status::ok(),
    };
    for (const Status& s : checks) {
      if (!s) return s;
    }
  }
  return w;
}

}  // namespace flashlm
