// A decoder of the families flashlm runs (llama, qwen2, qwen3, gemma3, and their MoE
// forms: train/moe_grad.h) as F32 master parameters, with one training step: the forward over a sequence keeping what
// the backward needs, the mean cross-entropy, and the backward adding every parameter's
// gradient. The forward is the inference model's (models/model.cpp) op for op, in F32
// activations: RMS norms, biases, QK-norm, RoPE from the same float recurrence, causal
// GQA attention with windows and soft-capping, post-norms, gated FFNs, tied or separate
// output, final soft-capping.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "models/config.h"
#include "tensor/dtype.h"
#include "train/grad_ops.h"
#include "train/moe_grad.h"
#include "util/status.h"

namespace flashlm::train {

// One trainable tensor, named as in the GGUF: F32 values and their gradient (empty in
// a model loaded for inference only, such as a distillation teacher).
struct Param {
  std::string name;
  int64_t ne0 = 0;  // row length
  int64_t ne1 = 1;  // rows
  std::vector<float> w;
  std::vector<float> g;
  int64_t size() const { return ne0 * ne1; }
};

// A loss on the logits [T][n_vocab] of one sequence: returns it and, when dlogits is not
// null, writes its gradient there ([T][n_vocab], every entry).
using LogitLoss = std::function<double(const float* logits, int64_t T, int64_t n_vocab, float* dlogits)>;

// LoRA (low-rank adaptation): an adapted matrix W computes W x + (alpha / rank) B (A x),
// A [rank][n_in] and B [n_out][rank] new parameters named as llama.cpp's LoRA GGUF names
// them ("<W>.lora_a", ne = [n_in, rank]; "<W>.lora_b", ne = [rank, n_out]). A starts
// uniform in +-1/sqrt(n_in) (PEFT's initialisation), B at zero, so training starts from
// the base model exactly. models/lora.h applies the written adapter at inference.
// Whether a parameter name is a LoRA matrix ("*.lora_a" or "*.lora_b").
bool is_lora_param(const std::string& name);

struct LoraConfig {
  int rank = 8;
  float alpha = 16.0f;
  // Tensor kinds adapted (attn_q attn_k attn_v attn_output ffn_gate ffn_up ffn_down);
  // empty: all of them (MoE layers: the attention ones).
  std::vector<std::string> targets;
  uint64_t seed = 1;
};

class TrainModel {
 public:
  // Loads every weight of a GGUF dequantized to F32 (an MoE layer's 3-D expert tensors
  // as one parameter each). trainable = false allocates no gradients (forward only: a
  // teacher).
  static Result<std::unique_ptr<TrainModel>> load(const std::string& path, bool trainable = true);

  const ModelConfig& config() const { return cfg_; }
  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  const Param* find(const std::string& name) const;

  // tokens[0..T) at positions 0..T-1; targets[t] < 0 is not scored. Adds each
  // parameter's gradient of the mean cross-entropy into Param::g; returns that loss.
  // A token or target outside the vocabulary is an error (nothing is computed).
  Result<double> step(const int32_t* tokens, const int32_t* targets, int64_t T, ThreadPool& pool);
  // The same with any loss on the logits (distillation's KL, for one).
  Result<double> step(const int32_t* tokens, int64_t T, const LogitLoss& loss, ThreadPool& pool);
  // The same forward without the backward: the loss (or 0 if targets is null) and,
  // if logits is not null, logits [T][n_vocab].
  Result<double> forward(const int32_t* tokens, const int32_t* targets, int64_t T, ThreadPool& pool,
                         std::vector<float>* logits);
  void zero_grad();
  // Gradient buffers for exactly the marked parameters: the others' weight gradients are
  // then not computed at all (a frozen base under LoRA, or --train norms). A model loaded
  // for inference only gets none.
  void set_trained(const std::vector<bool>& trained);

  // Adds LoRA parameters (after the base's in params()); an error for a target kind the
  // model has no matrix of, or a second call.
  Status add_lora(const LoraConfig& c);
  bool has_lora() const { return lora_scale_ != 0.0f; }
  const LoraConfig& lora_config() const { return lora_; }
  // Folds (alpha / rank) B A into each adapted matrix's master weights and returns their
  // indices (for writing a merged model); the adapters stay as they are.
  std::vector<int> merge_lora();

  // Gradient checkpointing: 0 keeps every layer's activations through the forward; N > 0
  // keeps only the input of every N-th layer and runs each segment of N layers again in
  // the backward (1: every layer, "--checkpointing layer").
  void set_checkpoint_every(int n) { checkpoint_every_ = n; }
  // The most activation bytes the last step held at once (the planner's own count).
  int64_t peak_act_bytes() const { return peak_act_bytes_; }

  // Quantization-aware training: types[i] != F32 makes the forward (and the input
  // gradients of the backward) use params()[i] quantized to that type and back, while the
  // gradient goes to the F32 master weights unchanged (the straight-through estimator).
  // The quantized copies are made now and again by refresh_fake_quant() after every
  // update; the written model, quantized with the same rounding, computes what the
  // forward computed. An error for a type that cannot quantize a tensor's rows.
  Status set_fake_quant(const std::vector<DType>& types, ThreadPool& pool);
  // Quantizes again the parameters marked in changed (all when null); nothing without
  // fake quantization.
  void refresh_fake_quant(ThreadPool& pool, const std::vector<bool>* changed = nullptr);

 private:
  // The matrices LoRA can adapt.
  enum Slot { kQ, kK, kV, kO, kGate, kUp, kDown, kLoraSlots };
  struct Layer {  // indices into params_ of one layer's tensors; -1: the layer has none
    int attn_norm = -1, wq = -1, wk = -1, wv = -1, wo = -1, bq = -1, bk = -1, bv = -1;
    int q_norm = -1, k_norm = -1, post_attn_norm = -1;
    int ffn_norm = -1, gate = -1, up = -1, down = -1, post_ffn_norm = -1;
    int router = -1, gate_exps = -1, up_exps = -1, down_exps = -1;  // MoE layers
    int gate_shexp = -1, up_shexp = -1, down_shexp = -1, gate_inp_shexp = -1;
    int lora_a[kLoraSlots] = {-1, -1, -1, -1, -1, -1, -1};  // LoRA pairs per Slot
    int lora_b[kLoraSlots] = {-1, -1, -1, -1, -1, -1, -1};
  };

  static int base_index(const Layer& l, Slot s);
  struct LayerActs;
  // y = x W^T (+ the slot's LoRA, keeping (alpha / rank) A x in *h); the backward adds
  // dx, W's gradient and the adapter's.
  void linear_fwd(const Layer& l, Slot s, const float* x, float* y, int64_t T, int64_t n_in, int64_t n_out,
                  std::vector<float>* h, ThreadPool& pool) const;
  void linear_bwd(const Layer& l, Slot s, const float* x, const std::vector<float>& h, const float* dy,
                  float* dx, int64_t T, int64_t n_in, int64_t n_out, ThreadPool& pool);

  TrainModel() = default;
  const float* W(int i) const;
  float* G(int i);
  MoeParamPtrs moe_params(const Layer& l) const;
  Glu glu_kind() const { return cfg_.act == Activation::kSilu ? Glu::kSilu : Glu::kGeluTanh; }
  AttentionShape attention_shape(int il, int64_t T) const;
  void layer_forward(int il, const std::vector<float>& x_in, const std::vector<float>& rope_cs, int64_t T,
                     ThreadPool& pool, LayerActs* a, std::vector<float>* x_out) const;
  void layer_backward(int il, const LayerActs& a, const std::vector<float>& rope_cs, int64_t T, ThreadPool& pool,
                      std::vector<float>* dx);
  Status check_ids(const int32_t* tokens, const int32_t* targets, int64_t T) const;
  double run(const int32_t* tokens, int64_t T, const LogitLoss* loss, bool backward, ThreadPool& pool,
             std::vector<float>* logits_out);
  int add_param(std::string name, int64_t ne0, int64_t ne1);

  ModelConfig cfg_;
  std::vector<Param> params_;
  std::vector<Layer> layers_;
  int tok_embd_ = -1, output_norm_ = -1, output_ = -1;  // output_ == tok_embd_ when tied
  std::vector<float> rope_factors_;                     // optional per-pair frequency factors
  bool trainable_ = true;
  int checkpoint_every_ = 0;
  int64_t peak_act_bytes_ = 0;
  LoraConfig lora_;
  float lora_scale_ = 0.0f;               // alpha / rank; 0: no adapters
  std::vector<DType> fq_types_;           // per parameter; empty: no fake quantization
  std::vector<std::vector<float>> fq_w_;  // the quantized-and-back weights the forward uses
};

}  // namespace flashlm::train
