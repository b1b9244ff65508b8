// The compute backend: every op the forward pass runs, behind one interface, so the
// model code (models/) says what to compute and a backend says how and where. A call
// is one op over a whole batch of rows for one layer (a virtual call per op and layer,
// never per row or element), and takes the runtime context explicitly.
//
// Backends: "cpu" (the fast kernels of kernels/cpu, backend/cpu_backend.h), "reference"
// (the scalar reference ops, backend/reference_backend.h: what the fast one is tested
// against end to end) and "cuda" (a skeleton under backend/cuda/, built with
// -DFLASHLM_CUDA=ON; it reports that its kernels are not there yet).
//
// A backend decides where weights live: Model::load places every weight through
// place(), which tags it with the backend's Device. Activations, scratch and the KV
// cache are host memory in this version of the seam.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "kernels/cpu/matmul.h"       // MatmulOut: one output of a matmul group
#include "kernels/cpu/ops.h"          // ops::RopeStyle, the RoPE pairing a model config names
#include "kernels/cpu/thread_pool.h"  // ThreadPool: the host workers of an ExecContext
#include "kv/kv_cache.h"
#include "tensor/tensor.h"
#include "util/status.h"

namespace flashlm {

enum class Activation { kSilu, kGeluTanh };

enum class BackendKind { kCpu, kReference, kCuda };
const char* backend_name(BackendKind kind);
// "cpu", "reference" or "cuda"; the error lists them.
Result<BackendKind> backend_kind_from_name(std::string_view name);

// What a forward pass runs with: the host thread pool (not owned) and whether each
// token's results must not depend on the rest of the batch (no panel GEMM; see
// MatmulOptions in kernels/cpu/matmul.h).
struct ExecContext {
  ThreadPool* pool = nullptr;
  bool batch_invariant = false;
};

// One gated FFN's weights (SwiGLU / GeGLU): down(act(gate(x)) * up(x)). n_ff = gate.ne[1].
struct FfnWeights {
  TensorView gate;  // [n_embd] x [n_ff]
  TensorView up;    // [n_embd] x [n_ff]
  TensorView down;  // [n_ff] x [n_embd]
};
enum class FfnPart { kGate, kUp, kDown };
inline const TensorView& ffn_part(const FfnWeights& w, FfnPart part) {
  return part == FfnPart::kGate ? w.gate : part == FfnPart::kUp ? w.up : w.down;
}

// One RoPE configuration of a model (Gemma 3 has a local and a global one).
struct RopeSpec {
  int64_t n_rot = 0;
  float base = 10000.0f;
  float scale = 1.0f;
  const float* factors = nullptr;  // [n_rot / 2] frequency divisors, or null
  ops::RopeStyle style = ops::RopeStyle::kNorm;
};

// Each token's RoPE cos/sin for every configuration of a model, prepared once at load
// by the backend that applies them; a forward pass fills it once per step.
class RopeTables {
 public:
  virtual ~RopeTables() = default;
  // cs: [n_configs][n][n_rot]: configuration c's table for token t at (c * n + t) * n_rot.
  virtual void fill(const ExecContext& ctx, const int32_t* pos, int64_t n, float* cs) const = 0;
};

// The rows of a step's q, k and v projections: QK-norm (when the weights are given) and
// RoPE on every head of q and k, then k and v written into the KV cache at each row's
// (layer, sequence, position).
struct QkvRows {
  float* q = nullptr;        // [n, n_head * head_dim]
  float* k = nullptr;        // [n, n_head_kv * head_dim]
  const float* v = nullptr;  // [n, n_head_kv * head_dim]
  int64_t n = 0;
  const int32_t* pos = nullptr;  // [n]
  const int32_t* seq = nullptr;  // [n] KV sequence ids
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  const float* q_norm = nullptr;  // [head_dim] or null (no QK-norm)
  const float* k_norm = nullptr;
  float norm_eps = 1e-5f;
  const RopeSpec* rope = nullptr;
  const float* rope_cs = nullptr;  // [n, n_rot] this configuration's table (RopeTables::fill)
  KvCache* kv = nullptr;
  int layer = 0;
};

// One work item of a layer's attention: queries rows [row, row + n_q) (one sequence,
// consecutive positions) for query heads [head_begin, head_end) of one KV group.
// models/attention_plan.h cuts a batch into these.
struct AttentionWork {
  int64_t row = 0;
  int32_t n_q = 0;
  int32_t head_begin = 0;
  int32_t head_end = 0;
  int64_t cost = 0;  // (query, key) pairs times heads: the order items are handed out
};

// Causal attention of a step's queries over the paged KV cache of one layer.
struct AttentionCall {
  const AttentionWork* items = nullptr;
  size_t n_items = 0;
  const float* q = nullptr;  // [n, q_stride]
  float* out = nullptr;      // [n, q_stride]
  int64_t q_stride = 0;      // n_head * head_dim
  const int32_t* pos = nullptr;
  const int32_t* seq = nullptr;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  float scale = 1.0f;     // applied to q.k
  float softcap = 0.0f;   // > 0: scores = softcap * tanh(scores / softcap)
  int64_t window = 0;     // > 0: keys with pos_q - pos_k < window
  const KvCache* kv = nullptr;
  int layer = 0;
};

// Sum of a Mixture-of-Experts layer's outputs per token: out[t] = sum over its selected
// slots j (in its own order, so batches stay invariant) of weights[t, j] *
// yg[slot_row[t, j]], plus sigmoid(shared_gate[t]) (1 without a gate) * shared[t].
struct MoeCombine {
  int64_t n = 0;
  int64_t dim = 0;
  int k = 0;                         // slots per token
  const float* yg = nullptr;         // [rows, dim] expert outputs grouped by expert
  const int32_t* slot_row = nullptr; // [n, k]
  const float* weights = nullptr;    // [n, k]
  const int32_t* n_used = nullptr;   // [n] slots used per token (<= k)
  const float* shared = nullptr;     // [n, dim] shared expert output, or null
  const float* shared_gate = nullptr;// [n] gate logits, or null (weight 1)
  float* out = nullptr;              // [n, dim]
};

class ComputeBackend {
 public:
  virtual ~ComputeBackend() = default;
  virtual BackendKind kind() const = 0;
  const char* name() const { return backend_name(kind()); }
  virtual Device device() const = 0;

  // A weight as this backend reads it, tagged with its device (host views stay where
  // they are for the host backends).
  virtual Result<TensorView> place(const TensorView& host) const = 0;
  virtual std::unique_ptr<RopeTables> rope_tables(const RopeSpec* specs, int n_specs) const = 0;

  // out[t] = row tokens[t] of table, times scale.
  virtual void embed(const ExecContext& ctx, const TensorView& table, const int32_t* tokens, int64_t n,
                     float scale, float* out) const = 0;
  // y[t, r] = sum_i w[r, i] * x[t, i] for t < n_tok (kernels/cpu/matmul.h's layout).
  virtual void matmul(const ExecContext& ctx, const TensorView& w, const float* x, int64_t ldx, float* y,
                      int64_t ldy, int64_t n_tok) const = 0;
  // Several matmuls of one x (a layer's q/k/v or gate/up projections), each as matmul;
  // a backend may run them as one operation.
  virtual void matmul_group(const ExecContext& ctx, const MatmulOut* outs, int n_outs, const float* x, int64_t ldx,
                            int64_t n_tok) const {
    for (int i = 0; i < n_outs; ++i) matmul(ctx, *outs[i].w, x, ldx, outs[i].y, outs[i].ldy, n_tok);
  }
  // Rows [row_begin, row_end) of w only (a vocabulary slice of the logits), into
  // y[t, r - row_begin].
  virtual void matmul_rows(const ExecContext& ctx, const TensorView& w, int64_t row_begin, int64_t row_end,
                           const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_tok) const = 0;
  // The grouped expert matmul of an MoE layer: rows [offset[e], offset[e + 1]) of x
  // times part of experts[e], for every e < n_expert with rows.
  virtual void expert_matmul(const ExecContext& ctx, const FfnWeights* experts, FfnPart part,
                             const int32_t* offset, int n_expert, const float* x, int64_t ldx, float* y,
                             int64_t ldy) const = 0;

  // y = x / rms(x) * w per row of dim floats (w f32 [dim]); y may alias x.
  virtual void rms_norm(const ExecContext& ctx, const float* x, const TensorView& w, float* y, int64_t n_rows,
                        int64_t dim, float eps) const = 0;
  virtual void add(const ExecContext& ctx, const float* a, const float* b, float* y, int64_t n) const = 0;
  // y[t] += b for each of n_rows rows of dim floats (b f32 [dim]).
  virtual void add_bias(const ExecContext& ctx, float* y, const TensorView& b, int64_t n_rows,
                        int64_t dim) const = 0;
  // gate = act(gate) * up, n_rows rows of n_ff floats.
  virtual void glu(const ExecContext& ctx, Activation act, float* gate, const float* up, int64_t n_rows,
                   int64_t n_ff) const = 0;
  // x = cap * tanh(x / cap).
  virtual void softcap(const ExecContext& ctx, float* x, int64_t n, float cap) const = 0;
  // dst[r] = src row index[r] (rows of dim floats).
  virtual void gather_rows(const ExecContext& ctx, const float* src, int64_t dim, const int32_t* index,
                           int64_t n_rows, float* dst) const = 0;

  virtual void qkv_rows(const ExecContext& ctx, const QkvRows& r) const = 0;
  // Queries x heads the attention kernel takes per work item (its tile height): how
  // models/attention_plan.h cuts a batch.
  virtual int attention_tile_rows() const = 0;
  virtual void attention(const ExecContext& ctx, const AttentionCall& a) const = 0;
  virtual void moe_combine(const ExecContext& ctx, const MoeCombine& m) const = 0;
};

// Whether this build has the backend's code (cuda: configured with -DFLASHLM_CUDA=ON).
bool backend_compiled(BackendKind kind);
// A backend of that kind, or why it cannot run in this build or on this machine.
Result<std::unique_ptr<ComputeBackend>> make_backend(BackendKind kind);

}  // namespace flashlm
