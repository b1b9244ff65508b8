// Weight tables: every tensor the forward pass reads, by role, as views into the mapped
// file. A missing required weight or a wrong shape fails at load with the tensor's name.
#pragma once

#include <string>
#include <vector>

#include "backend/backend.h"
#include "formats/gguf.h"
#include "models/config.h"
#include "models/ffn.h"
#include "tensor/tensor.h"
#include "util/status.h"

namespace flashlm {

struct LayerWeights {
  TensorView attn_norm;       // [n_embd]
  TensorView wq;              // [n_embd] x [n_head * head_dim]
  TensorView wk;              // [n_embd] x [n_head_kv * head_dim]
  TensorView wv;              // [n_embd] x [n_head_kv * head_dim]
  TensorView wo;              // [n_head * head_dim] x [n_embd]
  TensorView bq, bk, bv;      // biases, present iff attn_bias
  TensorView q_norm, k_norm;  // [head_dim], present iff qk_norm
  TensorView post_attn_norm;  // [n_embd], iff post_attn_norm
  TensorView ffn_norm;        // [n_embd]
  FfnWeights ffn;             // dense FFN: gate/up [n_embd] x [n_ff], down [n_ff] x [n_embd]
  MoeWeights moe;             // iff ffn == kMoe; experts view the 3-D ffn_{gate,up,down}_exps
                              // ([n_embd, n_ff_exp, n_expert], [n_ff_exp, n_embd, n_expert])
  TensorView post_ffn_norm;   // [n_embd], iff post_ffn_norm
};

struct ModelWeights {
  TensorView tok_embd;     // [n_embd] x [n_vocab]
  TensorView output_norm;  // [n_embd]
  TensorView output;       // [n_embd] x [n_vocab] (= tok_embd when tied)
  TensorView rope_freqs;   // [n_rot / 2] optional frequency factors
  std::vector<LayerWeights> layers;
};

// Looks tensors up by their GGUF names ("blk.N.attn_q.weight") and checks shapes.
class WeightLoader {
 public:
  explicit WeightLoader(const gguf::File& f) : f_(f) {}
  // ne0 = row length, ne1 = rows (0 to skip the check on that dimension).
  Status get(const std::string& name, int64_t ne0, int64_t ne1, TensorView* out) const;
  Status get_layer(int layer, const std::string& suffix, int64_t ne0, int64_t ne1, TensorView* out) const;
  // A 3-D stack of ne2 matrices (MoE experts), each [ne0] x [ne1].
  Status get_layer_3d(int layer, const std::string& suffix, int64_t ne0, int64_t ne1, int64_t ne2,
                      TensorView* out) const;
  // Vectors used as element-wise factors must be f32 (norm weights, biases).
  Status get_f32_vec(const std::string& name, int64_t n, TensorView* out) const;
  Status get_layer_f32_vec(int layer, const std::string& suffix, int64_t n, TensorView* out) const;
  bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }

 private:
  const gguf::File& f_;
};

// Matrix e of a 3-D stack, as a 2-D view into the same memory.
TensorView slice_matrix(const TensorView& stack, int64_t e);

// The standard weight table of a decoder-only transformer as GGUF names it, driven by
// the config (biases, QK-norm, post-norms, tied output).
Result<ModelWeights> load_decoder_weights(const gguf::File& f, const ModelConfig& cfg);

// Every present weight of the table placed on `backend` (ComputeBackend::place), so each
// view carries the device it lives on.
Status place_weights(const ComputeBackend& backend, ModelWeights* w);

}  // namespace flashlm
