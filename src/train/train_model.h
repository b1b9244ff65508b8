// A dense decoder of the families flashlm runs (llama, qwen2, qwen3, gemma3) as F32
// master parameters, with one training step: the forward over a sequence keeping what
// the backward needs, the mean cross-entropy, and the backward adding every parameter's
// gradient. The forward is the inference model's (models/model.cpp) op for op, in F32
// activations: RMS norms, biases, QK-norm, RoPE from the same float recurrence, causal
// GQA attention with windows and soft-capping, post-norms, gated FFNs, tied or separate
// output, final soft-capping.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "models/config.h"
#include "train/grad_ops.h"
#include "util/status.h"

namespace flashlm::train {

// One trainable tensor, named as in the GGUF: F32 values and their gradient.
struct Param {
  std::string name;
  int64_t ne0 = 0;  // row length
  int64_t ne1 = 1;  // rows
  std::vector<float> w;
  std::vector<float> g;
  int64_t size() const { return ne0 * ne1; }
};

class TrainModel {
 public:
  // Loads every weight of a GGUF dequantized to F32. MoE layers are refused by name
  // (their backward is not written yet).
  static Result<std::unique_ptr<TrainModel>> load(const std::string& path);

  const ModelConfig& config() const { return cfg_; }
  std::vector<Param>& params() { return params_; }
  const Param* find(const std::string& name) const;

  // tokens[0..T) at positions 0..T-1; targets[t] < 0 is not scored. Adds each
  // parameter's gradient of the mean cross-entropy into Param::g; returns that loss.
  // A token or target outside the vocabulary is an error (nothing is computed).
  Result<double> step(const int32_t* tokens, const int32_t* targets, int64_t T, ThreadPool& pool);
  // The same forward without the backward: the loss (or 0 if targets is null) and,
  // if logits is not null, logits [T][n_vocab].
  Result<double> forward(const int32_t* tokens, const int32_t* targets, int64_t T, ThreadPool& pool,
                         std::vector<float>* logits);
  void zero_grad();

  // Gradient checkpointing: 0 keeps every layer's activations through the forward; N > 0
  // keeps only the input of every N-th layer and runs each segment of N layers again in
  // the backward (1: every layer, "--checkpointing layer").
  void set_checkpoint_every(int n) { checkpoint_every_ = n; }
  // The most activation bytes the last step held at once (the planner's own count).
  int64_t peak_act_bytes() const { return peak_act_bytes_; }

 private:
  struct Layer {  // indices into params_ of one layer's tensors; -1: the layer has none
    int attn_norm = -1, wq = -1, wk = -1, wv = -1, wo = -1, bq = -1, bk = -1, bv = -1;
    int q_norm = -1, k_norm = -1, post_attn_norm = -1;
    int ffn_norm = -1, gate = -1, up = -1, down = -1, post_ffn_norm = -1;
  };

  struct LayerActs;

  TrainModel() = default;
  const float* W(int i) const;
  float* G(int i);
  Glu glu_kind() const { return cfg_.act == Activation::kSilu ? Glu::kSilu : Glu::kGeluTanh; }
  AttentionShape attention_shape(int il, int64_t T) const;
  void layer_forward(int il, const std::vector<float>& x_in, const std::vector<float>& rope_cs, int64_t T,
                     ThreadPool& pool, LayerActs* a, std::vector<float>* x_out) const;
  void layer_backward(int il, const LayerActs& a, const std::vector<float>& rope_cs, int64_t T, ThreadPool& pool,
                      std::vector<float>* dx);
  Status check_ids(const int32_t* tokens, const int32_t* targets, int64_t T) const;
  double run(const int32_t* tokens, const int32_t* targets, int64_t T, ThreadPool& pool, bool backward,
             std::vector<float>* logits_out);
  int add_param(std::string name, int64_t ne0, int64_t ne1);

  ModelConfig cfg_;
  std::vector<Param> params_;
  std::vector<Layer> layers_;
  int tok_embd_ = -1, output_norm_ = -1, output_ = -1;  // output_ == tok_embd_ when tied
  std::vector<float> rope_factors_;                     // optional per-pair frequency factors
  int checkpoint_every_ = 0;
  int64_t peak_act_bytes_ = 0;
};

}  // namespace flashlm::train
