#include "engine/runner.h"

#include <algorithm>
#include <thread>

#include "kernels/cpu/attention.h"

namespace flashlm {

int default_thread_count() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

Status kv_type_check(const Model& model, DType type) {
  if (kv_row_bytes(type, 32) == 0) {
    return Status::error("unsupported KV cache type id " + std::to_string(static_cast<uint32_t>(type)));
  }
  for (const LayerConfig& l : model.config().layers) {
    Status st = attention_kv_type_check(type, l.head_dim);
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

namespace {

KvConfig with_type(KvConfig kc, DType type) {
  kc.type = type;
  return kc;
}

}  // namespace

Runner::Runner(const Model& model, RuntimeOptions opts, int64_t n_ctx, int n_threads)
    : model_(model),
      opts_(opts),
      n_ctx_(n_ctx),
      pool_(n_threads),
      kv_(with_type(model.kv_config(n_ctx, opts.n_seqs, opts.n_batch), opts.kv_type)),
      lens_(static_cast<size_t>(opts.n_seqs), 0) {
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
  return std::unique_ptr<Runner>(new Runner(model, opts, n_ctx, n_threads));
}

int Runner::seq_new() {
  const int s = kv_.seq_new();
  if (s >= 0) lens_[static_cast<size_t>(s)] = 0;
  return s;
}

void Runner::seq_free(int seq) {
  kv_.seq_free(seq);
  if (seq >= 0 && seq < opts_.n_seqs) lens_[static_cast<size_t>(seq)] = 0;
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
    st = model_.forward(batch_, kv_, scratch_, pool_, &chunk_logits_);
    if (!st) return st;
    len += m;
    logits->insert(logits->end(), chunk_logits_.begin(), chunk_logits_.end());
  }
  return Status::ok();
}

}  // namespace flashlm
