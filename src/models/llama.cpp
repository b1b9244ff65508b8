// Llama family: Llama 2/3, SmolLM2, Mistral (sliding window when the file sets one).
// Pre-norm, SiLU-gated FFN, RoPE on adjacent pairs (the GGUF converter permutes Q/K so
// this matches the reference's rotate-half).
#include "models/registry.h"

namespace flashlm {

Result<ModelConfig> parse_llama(const gguf::File& f) {
  ModelConfig cfg;
  Status st = parse_common(f, "llama", &cfg);
  if (!st) return st;
  cfg.rope_style = ops::RopeStyle::kNorm;
  cfg.act = Activation::kSilu;
  Result<int64_t> window = f.get_int_or("llama.attention.sliding_window", 0);
  if (!window) return window.status();
  if (*window < 0) return Status::error("llama.attention.sliding_window must not be negative");
  for (LayerConfig& l : cfg.layers) l.sliding_window = static_cast<int>(*window);
  return cfg;
}

}  // namespace flashlm
