#include "engine/runner.h"

#include <algorithm>

#include "kernels/cpu/attention.h"

namespace flashlm {

int default_thread_count() { return usable_cpu_count(); }

Status kv_type_check(const Model& model, DType type) {
  if (kv_row_bytes(type, 32) == 0) {
    return Status::error("unsupported KV cache type id " + std::to_string(static_cast<uint32_t>(type)));
  }
  for (const LayerConfig& l : model.config().layers) {
    if (Status st = attention_kv_type_check(type, l.head_dim); !st.is_ok()) return st;
  }
  return Status::ok();
}

namespace {

// Global blocks that fit in `bytes` once the sliding-window pools (sized by their window,
// model.kv_config) have their share. All-local models put the rest into local pools.
Result<int64_t> global_blocks_for_budget(KvConfig& kc, int64_t bytes) {
  int64_t n_global = 0, n_local = 0;
  for (int l = 0; l < kc.n_layer; ++l) (kc.layer_window.empty() || kc.layer_window[static_cast<size_t>(l)] <= 0 ? n_global : n_local) += 1;
  // K and V of one block of one layer, in the cache's element type (as KvCache::bytes_for).
  const int64_t slab = 2 * static_cast<int64_t>(kc.block_size) * static_cast<int64_t>(kv_row_bytes(kc.type, kc.kv_dim));
  const int64_t local_bytes = n_local * slab * kc.n_blocks_local;
  const int64_t one_ctx = kc.n_blocks / kc.max_seqs;
  const int64_t need = local_bytes + n_global * slab * one_ctx;
  if (bytes < need) {
    return Status::error("a KV budget of " + std::to_string(bytes) + " bytes cannot hold one full context (" +
                         std::to_string(need) + " bytes needed)");
  }
  if (n_global == 0) {
    kc.n_blocks_local = std::min<int64_t>(bytes / (n_local * slab), INT32_MAX);
    return kc.n_blocks;
  }
  return std::min<int64_t>((bytes - local_bytes) / (n_global * slab), INT32_MAX);
}

// The cache's layout: one context per sequence unless a block count or a byte budget
// says otherwise. Fewer blocks than one full context could leave even a lone sequence
// stuck; more than n_seqs full contexts hold cached prefixes.
Result<KvConfig> kv_config_for(const Model& model, const RuntimeOptions& o, int64_t n_ctx) {
  if (o.kv_blocks < 0) return Status::error("KV block count must not be negative");
  if (o.kv_mem_bytes < 0) return Status::error("KV memory budget must not be negative");
  KvConfig kc = model.kv_config(n_ctx, o.n_seqs, o.n_batch);
  kc.type = o.kv_type;
  int64_t n_blocks = o.kv_blocks;
  if (o.kv_mem_bytes > 0) {
    Result<int64_t> n = global_blocks_for_budget(kc, o.kv_mem_bytes);
    if (!n) return n.status();
    n_blocks = *n;
  }
  const int64_t one_ctx = (n_ctx + kc.block_size - 1) / kc.block_size;
  if (n_blocks > 0 && n_blocks < one_ctx) {
    return Status::error("a KV pool of " + std::to_string(n_blocks) + " blocks cannot hold one full context of " +
                         std::to_string(n_ctx) + " tokens (" + std::to_string(one_ctx) + " blocks of " +
                         std::to_string(kc.block_size) + ")");
  }
  if (n_blocks > 0) kc.n_blocks = n_blocks;
  if (kc.n_blocks > INT32_MAX || kc.n_blocks_local > INT32_MAX) return Status::error("KV pool too large");
  return kc;
}

}  // namespace

Runner::Runner(const Model& model, RuntimeOptions opts, int64_t n_ctx, int n_threads, const KvConfig& kc)
    : model_(model), opts_(opts), n_ctx_(n_ctx), pool_(n_threads), kv_(kc), lens_(static_cast<size_t>(opts.n_seqs), 0) {
  scratch_.batch_invariant = opts.batch_invariant;
}

Result<std::unique_ptr<Runner>> Runner::create(const Model& model, RuntimeOptions opts) {
  int64_t n_ctx = opts.n_ctx;
  if (n_ctx < 0) return Status::error("context size must not be negative");
  if (n_ctx == 0) n_ctx = std::min<int64_t>(model.config().n_ctx_train, 4096);
  if (n_ctx > model.config().n_ctx_train) {
    return Status::error("context size " + std::to_string(n_ctx) + " exceeds the model's training context " +
                         std::to_string(model.config().n_ctx_train));
  }
  if (opts.n_batch < 1) return Status::error("batch size must be at least 1");
  if (opts.n_seqs < 1 || opts.n_seqs > 4096) return Status::error("number of sequences must be in [1, 4096]");
  int n_threads = opts.n_threads;
  if (n_threads < 0 || n_threads > 1024) return Status::error("thread count must be in [0, 1024]");
  if (n_threads == 0) n_threads = default_thread_count();
  if (Status st = kv_type_check(model, opts.kv_type); !st.is_ok()) return st;
  Result<KvConfig> kc = kv_config_for(model, opts, n_ctx);
  if (!kc) return kc.status();
  return std::unique_ptr<Runner>(new Runner(model, opts, n_ctx, n_threads, *kc));
}

Status Runner::forward(const Batch& batch, std::vector<float>* logits) {
  return model_.forward(batch, kv_, scratch_, pool_, logits);
}

int Runner::seq_new() {
  const int s = kv_.seq_new();
  if (s >= 0) lens_[static_cast<size_t>(s)] = 0;
  return s;
}

int64_t Runner::seq_truncate(int seq, int64_t n) {
  if (!kv_.seq_valid(seq)) return 0;
  int64_t& len = lens_[static_cast<size_t>(seq)];
  if (n >= 0 && n < len) len = kv_.seq_truncate(seq, n);
  return len;
}

Status Runner::eval(int seq, std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits) {
  if (!kv_.seq_valid(seq)) return Status::error("unknown sequence " + std::to_string(seq));
  if (tokens.empty()) return Status::error("nothing to evaluate");
  int64_t& len = lens_[static_cast<size_t>(seq)];
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (len + n > n_ctx_) {
    return Status::error("context full: " + std::to_string(len) + " + " + std::to_string(n) + " tokens exceed the context of " +
                         std::to_string(n_ctx_) + " (raise -c)");
  }
  logits->clear();
  for (int64_t off = 0; off < n; off += opts_.n_batch) {
    const int64_t m = std::min<int64_t>(opts_.n_batch, n - off);
    // Chunk by chunk, so sliding-window layers release what falls out of their window.
    Status st = kv_.seq_prepare(seq, len, len + m);
    if (!st) return st;
    batch_.clear();
    for (int64_t i = 0; i < m; ++i) {
      const bool want = all_logits || off + i == n - 1;
      batch_.add(tokens[static_cast<size_t>(off + i)], static_cast<int32_t>(len + i), seq, want);
    }
    st = forward(batch_, &chunk_logits_);
    if (!st) return st;
    len += m;
    logits->insert(logits->end(), chunk_logits_.begin(), chunk_logits_.end());
  }
  return Status::ok();
}

}  // namespace flashlm
