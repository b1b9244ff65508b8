// A loaded model: the mapped file, its typed config and weight table, and the forward
// pass over a batch of tokens from many sequences.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "formats/gguf.h"
#include "kv/kv_cache.h"
#include "models/attention_plan.h"
#include "models/batch.h"
#include "models/config.h"
#include "models/lora.h"
#include "models/moe.h"
#include "models/weights.h"

namespace flashlm {

// Scratch memory for forward passes, sized once for the largest batch; reused every
// step so nothing is allocated in the hot loop.
struct ForwardScratch {
  int64_t capacity = 0;           // tokens
  bool batch_invariant = false;   // each token's results independent of the batch (ExecContext)
  std::vector<float> x;           // [n, n_embd] residual stream
  std::vector<float> cur;         // [n, n_embd] normalised input
  std::vector<float> q;           // [n, n_head * head_dim]
  std::vector<float> k;           // [n, kv_dim]
  std::vector<float> v;           // [n, kv_dim]
  std::vector<float> attn;        // [n, n_head * head_dim]
  std::vector<float> proj;        // [n, n_embd]
  std::vector<float> gate;        // [n, n_ff]
  std::vector<float> up;          // [n, n_ff]
  std::vector<float> out_rows;    // [n_logits, n_embd]
  std::vector<AttentionWork> attn_work;  // [n_items] one layer's attention work items
  std::vector<float> rope_cs;     // [n_rope_configs, n, n_rot] each token's cos/sin (RopeTables)
  std::vector<int32_t> out_index; // [n] rows whose logits are wanted
  MoeScratch moe;                 // MoE layers' routing and grouped-expert buffers
  std::vector<float> lora_h;      // [n, max LoRA rank] (only with adapters)
  std::vector<float> lora_tmp;    // [n, widest adapted output]
  FfnObserver* ffn_observer = nullptr;  // optional, not owned (models/ffn.h)
  // Embeddings: forward's `logits` receives each wanted row's final-norm hidden state
  // ([n_out, n_embd], llama.cpp's embedding rows) instead of its logits.
  bool hidden_rows = false;
  // Optional, not owned: runs the pass instead of the model's own backend; a decorator of
  // it such as backend/observing_backend.h, which sees the activations.
  const ComputeBackend* backend = nullptr;
};

class Model {
 public:
  // Loads the file and places its weights on `backend` (backend/backend.h), which every
  // forward pass of this model then runs on; LoRA adapters (models/lora.h) are applied in
  // every forward pass.
  // `weights`: read into huge pages (faster decode) or mapped; see util/mapped_file.h.
  static Result<std::unique_ptr<Model>> load(const std::string& path, BackendKind backend = BackendKind::kCpu,
                                             const std::vector<LoraSpec>& loras = {},
                                             FileBacking weights = FileBacking::kAuto);

  const ModelConfig& config() const { return cfg_; }
  const gguf::File& file() const { return file_; }
  const ModelWeights& weights() const { return weights_; }

  // A KV config for `n_ctx` positions per sequence and `n_seqs` sequences; sliding-window
  // layers get pools sized by their window and `step_tokens` new tokens per forward pass
  // (0: n_ctx) instead of the context.
  KvConfig kv_config(int64_t n_ctx, int n_seqs, int64_t step_tokens = 0, int block_size = 32) const;
  // The KV cache's identity of these weights: the file's, and the adapters' when any.
  uint64_t model_id() const { return model_id_; }
  const LoraSet& lora() const { return lora_; }
  const ComputeBackend& backend() const { return *backend_; }

  // Runs the batch. Every (seq, pos) must be backed by KV blocks (KvCache::seq_reserve)
  // and positions of one sequence must be written in order. logits receives
  // [batch.n_logits(), n_vocab] rows in batch order. The ops run on backend() with
  // `pool` as their host workers.
  Status forward(const Batch& batch, KvCache& kv, ForwardScratch& scratch, ThreadPool& pool,
                 std::vector<float>* logits) const;

 private:
  Model(gguf::File f, ModelConfig cfg, ModelWeights w, std::unique_ptr<ComputeBackend> backend, LoraSet lora);
  void reserve(ForwardScratch& s, int64_t n_tokens) const;
  static uint64_t compute_model_id(const gguf::File& f);

  gguf::File file_;
  ModelConfig cfg_;
  ModelWeights weights_;
  std::unique_ptr<ComputeBackend> backend_;
  LoraSet lora_;                      // run-time adapters (empty: none)
  std::vector<RopeSpec> rope_;        // the layers' distinct RoPE configurations
  std::vector<int> layer_rope_;       // [n_layer] index into rope_
  std::unique_ptr<RopeTables> rope_tables_;  // rope_'s tables, prepared by the backend
  uint64_t model_id_ = 0;             // root of the KV cache's block hashes
};

}  // namespace flashlm
