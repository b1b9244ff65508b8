// The model runner: owns the thread pool, the paged KV cache and the forward scratch for
// one model, and runs forward passes over batches. The scheduler drives it for every
// command that generates (its BlockManager hands out the cache's blocks); bench and
// perplexity, which need timings or every token's logits, drive one sequence directly
// with eval(), which feeds tokens in chunks of at most n_batch.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "kv/kv_cache.h"
#include "models/model.h"

namespace flashlm {

// The KV cache's element type unless a flag says otherwise: f16 halves the cache of f32
// with no speed difference measured and perplexity within 0.35% on both real models
// (docs/BENCHMARKS.md, "Quantized KV"); llama.cpp's default too.
inline constexpr DType kDefaultKvType = DType::F16;

// Whether attention can read every layer of `model` from a cache of `type` (head sizes
// that are whole blocks, and not too large to convert by tiles).
Status kv_type_check(const Model& model, DType type);

struct RuntimeOptions {
  int n_threads = 0;     // 0: usable_cpu_count() (affinity mask, cgroup quota)
  int64_t n_ctx = 0;     // positions per sequence; 0: min(training context, 4096)
  int n_batch = 512;     // tokens per forward pass
  int n_seqs = 1;        // concurrent sequences sharing the KV pool
  bool batch_invariant = false;  // results independent of batching (no panel GEMM; MatmulOptions)
  DType kv_type = kDefaultKvType;  // element type of the KV cache (kv_type_from_name)
  int64_t kv_blocks = 0;     // global layers' KV pool in blocks; 0: n_seqs * n_ctx worth
  int64_t kv_mem_bytes = 0;  // KV budget in bytes (all pools; local ones sized by window); 0: kv_blocks
};

class Runner {
 public:
  static Result<std::unique_ptr<Runner>> create(const Model& model, RuntimeOptions opts);

  int64_t n_ctx() const { return n_ctx_; }
  const KvCache& kv() const { return kv_; }
  KvCache& kv() { return kv_; }

  // One forward pass over a batch whose positions the cache already backs; logits gets
  // one row per token that asked for them. The engine's only caller of Model::forward.
  Status forward(const Batch& batch, std::vector<float>* logits);

  // Sequences for eval(). seq_truncate forgets positions from n on and returns the length
  // kept (shorter than n where sliding-window layers released what n would read).
  int seq_new();
  int64_t seq_len(int seq) const { return lens_[static_cast<size_t>(seq)]; }
  int64_t seq_truncate(int seq, int64_t n);

  // Appends tokens to a sequence and runs them. With all_logits, logits holds one row
  // per token; otherwise only the last token's row. Fails cleanly (nothing appended)
  // when the sequence would exceed n_ctx.
  Status eval(int seq, std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits);
  // From now on forward() and eval() give final-norm hidden states ([rows, n_embd]) in
  // place of logits: the rows a decoder model's embeddings are pooled from.
  void set_hidden_output(bool on) { scratch_.hidden_rows = on; }

 private:
  Runner(const Model& model, RuntimeOptions opts, int64_t n_ctx, int n_threads, const KvConfig& kc);

  const Model& model_;
  RuntimeOptions opts_;
  int64_t n_ctx_;
  ThreadPool pool_;
  KvCache kv_;
  ForwardScratch scratch_;
  Batch batch_;
  std::vector<float> chunk_logits_;
  std::vector<int64_t> lens_;
};

int default_thread_count();

}  // namespace flashlm
