// Qwen 2 / 2.5 (biases on q, k, v) and Qwen 3 (per-head RMS QK-norm, no biases).
// Both rotate halves (NeoX RoPE) and use a SiLU-gated FFN.
#include "models/registry.h"

namespace flashlm {

Result<ModelConfig> parse_qwen2(const gguf::File& f) {
  ModelConfig cfg;
  Status st = parse_common(f, "qwen2", &cfg);
  if (!st) return st;
  cfg.rope_style = ops::RopeStyle::kNeox;
  for (LayerConfig& l : cfg.layers) l.attn_bias = true;
  return cfg;
}

Result<ModelConfig> parse_qwen3(const gguf::File& f) {
  ModelConfig cfg;
  Status st = parse_common(f, "qwen3", &cfg);
  if (!st) return st;
  cfg.rope_style = ops::RopeStyle::kNeox;
  for (LayerConfig& l : cfg.layers) l.qk_norm = true;
  return cfg;
}

}  // namespace flashlm
