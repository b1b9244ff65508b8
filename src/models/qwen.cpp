// Qwen 2 / 2.5 (biases on q, k, v) and Qwen 3 (per-head RMS QK-norm, no biases).
// Both rotate halves (NeoX RoPE) and use a SiLU-gated FFN. Their MoE variants have the
// same attention; Qwen2-MoE sums the top-k experts with unnormalised softmax weights
// plus a sigmoid-gated shared expert, Qwen3-MoE renormalises the top-k weights.
#include "models/registry.h"

namespace flashlm {

namespace {
Result<ModelConfig> qwen2_like(const gguf::File& f, const std::string& arch, const MoeDefaults& moe) {
  ModelConfig cfg;
  Status st = parse_common(f, arch, &cfg, moe);
  if (!st) return st;
  cfg.rope_style = ops::RopeStyle::kNeox;
  for (LayerConfig& l : cfg.layers) l.attn_bias = true;
  return cfg;
}

Result<ModelConfig> qwen3_like(const gguf::File& f, const std::string& arch) {
  ModelConfig cfg;
  Status st = parse_common(f, arch, &cfg);
  if (!st) return st;
  cfg.rope_style = ops::RopeStyle::kNeox;
  for (LayerConfig& l : cfg.layers) l.qk_norm = true;
  return cfg;
}
}  // namespace

Result<ModelConfig> parse_qwen2(const gguf::File& f) { return qwen2_like(f, "qwen2", {}); }
Result<ModelConfig> parse_qwen3(const gguf::File& f) { return qwen3_like(f, "qwen3"); }
Result<ModelConfig> parse_qwen2moe(const gguf::File& f) { return qwen2_like(f, "qwen2moe", {.norm_weights = false}); }
Result<ModelConfig> parse_qwen3moe(const gguf::File& f) { return qwen3_like(f, "qwen3moe"); }

}  // namespace flashlm
