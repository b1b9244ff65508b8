// Runs a model over sequences: owns the thread pool, the paged KV cache and the forward
// scratch for one model. Prompts are fed in chunks of at most n_batch tokens.
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
  int n_threads = 0;     // 0: all cores
  int64_t n_ctx = 0;     // positions per sequence; 0: min(training context, 4096)
  int n_batch = 512;     // tokens per forward pass
  int n_seqs = 1;        // concurrent sequences sharing the KV pool
  bool batch_invariant = false;  // results independent of batching (no panel GEMM; MatmulOptions)
  DType kv_type = kDefaultKvType;  // element type of the KV cache (kv_type_from_name)
};

class Runner {
 public:
  static Result<std::unique_ptr<Runner>> create(const Model& model, RuntimeOptions opts);

  const Model& model() const { return model_; }
  int64_t n_ctx() const { return n_ctx_; }
  int n_threads() const { return pool_.size(); }
  const KvCache& kv() const { return kv_; }

  int seq_new();
  void seq_free(int seq);
  int64_t seq_len(int seq) const { return lens_[static_cast<size_t>(seq)]; }
  // Forgets positions from n on; lets a chat turn reuse the KV of the prefix it shares
  // with the previous turn. Returns the length kept, which is shorter than n (down to 0)
  // when sliding-window layers have already released KV that position n would read.
  int64_t seq_truncate(int seq, int64_t n);

  // Appends tokens to a sequence and runs them. With all_logits, logits holds one row
  // per token; otherwise only the last token's row. Fails cleanly (nothing appended)
  // when the sequence would exceed n_ctx.
  Status eval(int seq, std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits);

 private:
  Runner(const Model& model, RuntimeOptions opts, int64_t n_ctx, int n_threads);

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
