// The operations of a decoder's training step, each a forward that keeps what its
// backward needs and a backward that ADDS its input gradients into the caller's buffers
// (so a residual branch and a tied weight simply accumulate). Rows are row-major:
// activations [T][n], weights [n_out][n_in] as GGUF stores them (ne0 = n_in).
//
// These are the plain float references, written for clarity; each is checked against
// central finite differences (grad_ops_test.cpp) and the whole step against PyTorch
// (train_model_test.cpp). The matmuls and attention, nearly all of a step's work, run on
// the pool (kernels/cpu/sgemm.h).
#pragma once

#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"

namespace flashlm::train {

// y[T][n_out] = x[T][n_in] . w^T
void matmul_fwd(const float* x, const float* w, float* y, int64_t T, int64_t n_in, int64_t n_out, ThreadPool& pool);
// dx[T][n_in] += dy . w; dw[n_out][n_in] += dy^T . x (either may be null: not wanted).
void matmul_bwd(const float* x, const float* w, const float* dy, float* dx, float* dw, int64_t T, int64_t n_in,
                int64_t n_out, ThreadPool& pool);

// y = x / rms(x) * w per row of n (the inference kernels' formula); rstd[T] is kept.
void rms_norm_fwd(const float* x, const float* w, float* y, float* rstd, int64_t T, int64_t n, float eps);
void rms_norm_bwd(const float* x, const float* w, const float* rstd, const float* dy, float* dx, float* dw, int64_t T,
                  int64_t n);

// y[T][n] += b[n]; db += sum over rows of dy.
void bias_fwd(float* y, const float* b, int64_t T, int64_t n);
void bias_bwd(const float* dy, float* db, int64_t T, int64_t n);

// RoPE over the first n_rot dims of each of n_head heads of each row; cs[T][n_rot]
// holds each row's cos (first half) and sin (second half), as ops::RopeFreqs gives them.
// In place; the backward is the inverse rotation, also in place on the gradient.
void rope_fwd(float* x, const float* cs, int64_t T, int64_t n_head, int64_t head_dim, int64_t n_rot,
              ops::RopeStyle style);
void rope_bwd(float* dx, const float* cs, int64_t T, int64_t n_head, int64_t head_dim, int64_t n_rot,
              ops::RopeStyle style);

// y = act(gate) * up for GeGLU (tanh GELU) or SwiGLU.
enum class Glu { kSilu, kGeluTanh };
void glu_fwd(Glu kind, const float* gate, const float* up, float* y, int64_t n);
void glu_bwd(Glu kind, const float* gate, const float* up, const float* dy, float* dgate, float* dup, int64_t n);

// y = c * tanh(x / c) (logit soft-capping).
void softcap_fwd(const float* x, float* y, int64_t n, float c);
void softcap_bwd(const float* y, const float* dy, float* dx, int64_t n, float c);  // from the output y

// Causal self-attention of one sequence at positions 0..T-1, grouped-query (head h reads
// KV head h / (n_head / n_head_kv)), keys with i - j < window when window > 0, scores
// scale * q.k soft-capped when softcap > 0. q [T][n_head*hd], k/v [T][n_head_kv*hd],
// out [T][n_head*hd]; probs [n_head][T][T] is kept for the backward.
struct AttentionShape {
  int64_t T = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t window = 0;
  float scale = 1.0f;
  float softcap = 0.0f;
};
// Per-head GEMMs on the pool (kernels/cpu/sgemm.h), the softmax rows between them.
void attention_fwd(const AttentionShape& a, const float* q, const float* k, const float* v, float* out, float* probs,
                   ThreadPool& pool);
void attention_bwd(const AttentionShape& a, const float* q, const float* k, const float* v, const float* probs,
                   const float* dout, float* dq, float* dk, float* dv, ThreadPool& pool);
// The same, one (query, key) pair at a time: the reference the GEMM form is tested against.
void attention_fwd_reference(const AttentionShape& a, const float* q, const float* k, const float* v, float* out,
                             float* probs);
void attention_bwd_reference(const AttentionShape& a, const float* q, const float* k, const float* v,
                             const float* probs, const float* dout, float* dq, float* dk, float* dv);

// Mean cross-entropy of logits [T][n_vocab] against targets (a target < 0 is not
// scored); dlogits (may be null) gets its gradient. Returns the mean over scored rows
// and sets *n_scored.
double cross_entropy(const float* logits, const int32_t* targets, int64_t T, int64_t n_vocab, float* dlogits,
                     int64_t* n_scored);

}  // namespace flashlm::train
