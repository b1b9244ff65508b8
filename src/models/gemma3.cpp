// Gemma 3: interleaved local (sliding-window) and global attention layers with their own
// RoPE bases, per-head QK-norm, norms before and after both attention and FFN, GeGLU
// (tanh GELU), embeddings scaled by sqrt(n_embd), output tied to the embeddings.
#include <cmath>

#include "models/registry.h"

namespace flashlm {
namespace {
// Every sixth layer is global unless the file says otherwise; local layers use base 10k
// unless gemma3.rope.freq_base_swa says otherwise.
constexpr int kDefaultSwaPattern = 6;
constexpr float kLocalRopeBase = 10000.0f;
}  // namespace

Result<ModelConfig> parse_gemma3(const gguf::File& f) {
  ModelConfig cfg;
  Status st = parse_common(f, "gemma3", &cfg);
  if (!st) return st;
  cfg.rope_style = ops::RopeStyle::kNeox;
  cfg.act = Activation::kGeluTanh;
  cfg.embd_scale = std::sqrt(static_cast<float>(cfg.n_embd));
  // The 27B model scales queries by 1/sqrt(n_embd / n_head); the others by 1/sqrt(head_dim).
  const LayerConfig& l0 = cfg.layers[0];
  cfg.attn_scale = cfg.n_layer == 62 ? 1.0f / std::sqrt(static_cast<float>(cfg.n_embd / l0.n_head))
                                     : 1.0f / std::sqrt(static_cast<float>(l0.head_dim));

  Result<int64_t> window = f.get_int_or("gemma3.attention.sliding_window", 0);
  if (!window) return window.status();
  Result<double> local_base = f.get_float_or("gemma3.rope.freq_base_swa", kLocalRopeBase);
  if (!local_base) return local_base.status();
  if (!(*local_base > 0.0)) return Status::error("gemma3.rope.freq_base_swa must be positive");
  Result<double> final_cap = f.get_float_or("gemma3.final_logit_softcapping", 0.0);
  Result<double> attn_cap = f.get_float_or("gemma3.attn_logit_softcapping", 0.0);
  if (!final_cap) return final_cap.status();
  if (!attn_cap) return attn_cap.status();
  if (*final_cap < 0.0 || *attn_cap < 0.0) return Status::error("gemma3 softcapping values must not be negative");
  cfg.final_softcap = static_cast<float>(*final_cap);
  cfg.attn_softcap = static_cast<float>(*attn_cap);
  if (*window < 0) return Status::error("gemma3.attention.sliding_window must not be negative");

  // Which layers are local: a per-layer bool array when the file has one, else the
  // default pattern (5 local, then 1 global).
  std::vector<bool> local(static_cast<size_t>(cfg.n_layer));
  const gguf::Value* pattern = f.find("gemma3.attention.sliding_window_pattern");
  if (pattern != nullptr && pattern->type == gguf::ValueType::kArray) {
    if (pattern->count != static_cast<uint64_t>(cfg.n_layer) || pattern->ints.size() != pattern->count) {
      return Status::error("gemma3.attention.sliding_window_pattern must be one bool per layer");
    }
    for (int i = 0; i < cfg.n_layer; ++i) local[static_cast<size_t>(i)] = pattern->ints[static_cast<size_t>(i)] != 0;
  } else {
    int64_t n = kDefaultSwaPattern;
    if (pattern != nullptr) {
      if (!pattern->is_integer() || pattern->i < 0) return Status::error("bad gemma3.attention.sliding_window_pattern");
      n = pattern->i;
    }
    for (int i = 0; i < cfg.n_layer; ++i) local[static_cast<size_t>(i)] = n == 0 || (i % n) < (n - 1);
  }

  for (int i = 0; i < cfg.n_layer; ++i) {
    LayerConfig& l = cfg.layers[static_cast<size_t>(i)];
    l.qk_norm = true;
    l.post_attn_norm = true;
    l.post_ffn_norm = true;
    if (local[static_cast<size_t>(i)] && *window > 0) {
      l.sliding_window = static_cast<int>(*window);
      l.rope_base = static_cast<float>(*local_base);
      l.rope_scale = 1.0f;  // linear scaling applies to global layers only
    }
  }
  return cfg;
}

}  // namespace flashlm
