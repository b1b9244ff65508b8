// Typed model configuration: every difference between architecture families is a field
// or an enum here, parsed and validated once from GGUF metadata. The forward pass
// branches on these, never on architecture names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"  // Activation, ops::RopeStyle

namespace flashlm {

enum class FfnKind { kDense, kMoe };  // kMoe: router -> top-k -> expert FFNs (models/moe.h)
// How router logits become expert scores (llama.cpp's expert_gating_func: 1, 2).
enum class ExpertGating { kSoftmax, kSigmoid };

// A Mixture-of-Experts FFN layer: each token runs the n_expert_used best-scored of
// n_expert gated FFNs (n_ff_exp wide) and sums their outputs with routing weights, plus
// an optional shared expert that every token runs.
struct MoeConfig {
  int n_expert = 0;
  int n_expert_used = 0;           // k
  int n_ff_exp = 0;                // each expert's FFN width
  int n_ff_shexp = 0;              // shared expert's FFN width; 0: none
  bool shexp_gate = false;         // shared output scaled by sigmoid(ffn_gate_inp_shexp . x); else weight 1
  ExpertGating gating = ExpertGating::kSoftmax;
  bool norm_weights = false;       // selected weights divided by their sum
  float weights_scale = 1.0f;      // selected weights multiplied by this (after norm)
  bool unit_weights = false;       // flashlm.moe.unit_weights: selected experts summed with weight 1
  float adaptive_threshold = 0.0f; // flashlm.moe.adaptive_threshold: fewest top experts whose
                                   // softmax mass reaches it (at most k); 0: always k
};

struct LayerConfig {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;          // key/query head size
  int n_ff = 0;
  int sliding_window = 0;    // 0: global attention; > 0: keys with pos_q - pos_k < window
  float rope_base = 10000.0f;
  float rope_scale = 1.0f;   // multiplies positions (1 / linear scaling factor)
  bool qk_norm = false;      // RMS-normalise q and k per head before RoPE
  bool attn_bias = false;    // q/k/v projections have biases
  bool post_attn_norm = false;  // norm on the attention output before the residual add
  bool post_ffn_norm = false;   // norm on the FFN output before the residual add
  FfnKind ffn = FfnKind::kDense;
  MoeConfig moe;             // iff ffn == kMoe
};

struct ModelConfig {
  std::string arch;          // general.architecture, for display only
  std::string name;          // general.name
  int64_t n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int64_t n_ctx_train = 0;
  float norm_eps = 1e-5f;
  int n_rot = 0;             // rotated dims per head
  ops::RopeStyle rope_style = ops::RopeStyle::kNorm;
  Activation act = Activation::kSilu;
  float embd_scale = 1.0f;   // multiplies token embeddings (Gemma: sqrt(n_embd))
  float attn_scale = 0.0f;   // q.k scale; 0 means 1/sqrt(head_dim)
  float attn_softcap = 0.0f;
  float final_softcap = 0.0f;
  bool tied_embeddings = false;  // output projection = token embedding matrix
  std::vector<LayerConfig> layers;

  int max_head_dim() const;
  int64_t max_kv_dim() const;  // max over layers of n_head_kv * head_dim
  bool has_sliding_window() const;
};

}  // namespace flashlm
