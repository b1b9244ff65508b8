// A backend decorator that shows a forward pass's activations to an observer and then
// runs every op on the wrapped backend unchanged: the factory's calibration tools
// (imatrix collection, pruning scores) see what each weight matrix multiplies and the
// residual stream at each norm without a line of model code knowing about them.
// Set ForwardScratch::backend to one for the passes that should be observed.
#pragma once

#include "backend/backend.h"

namespace flashlm {

class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // w is about to multiply rows x[t * ldx .. + w.ne[0]) for t < n_tok. Expert matmuls
  // arrive as one call per expert with rows, w being that expert's 2-D slice.
  virtual void on_matmul(const TensorView& w, const float* x, int64_t ldx, int64_t n_tok) = 0;
  // An RMS norm with weight w is about to normalise n_rows rows of dim floats at x.
  virtual void on_rms_norm(const TensorView& w, const float* x, int64_t n_rows, int64_t dim) = 0;
};

// Observers are called on the thread that runs the forward pass, before the op.
class ObservingBackend final : public ComputeBackend {
 public:
  ObservingBackend(const ComputeBackend& inner, ActivationObserver& observer) : in_(inner), obs_(observer) {}

  BackendKind kind() const override { return in_.kind(); }
  Device device() const override { return in_.device(); }
  Result<TensorView> place(const TensorView& host) const override { return in_.place(host); }
  std::unique_ptr<RopeTables> rope_tables(const RopeSpec* specs, int n_specs) const override {
    return in_.rope_tables(specs, n_specs);
  }
  void embed(const ExecContext& ctx, const TensorView& table, const int32_t* tokens, int64_t n, float scale,
             float* out) const override {
    in_.embed(ctx, table, tokens, n, scale, out);
  }
  void matmul(const ExecContext& ctx, const TensorView& w, const float* x, int64_t ldx, float* y, int64_t ldy,
              int64_t n_tok) const override;
  void matmul_group(const ExecContext& ctx, const MatmulOut* outs, int n_outs, const float* x, int64_t ldx,
                    int64_t n_tok) const override;
  // Vocabulary slices of the logits are not observed (only whole matrices are).
  void matmul_rows(const ExecContext& ctx, const TensorView& w, int64_t row_begin, int64_t row_end, const float* x,
                   int64_t ldx, float* y, int64_t ldy, int64_t n_tok) const override {
    in_.matmul_rows(ctx, w, row_begin, row_end, x, ldx, y, ldy, n_tok);
  }
  void expert_matmul(const ExecContext& ctx, const FfnWeights* experts, FfnPart part, const int32_t* offset,
                     int n_expert, const float* x, int64_t ldx, float* y, int64_t ldy) const override;
  void rms_norm(const ExecContext& ctx, const float* x, const TensorView& w, float* y, int64_t n_rows, int64_t dim,
                float eps) const override;
  void add(const ExecContext& ctx, const float* a, const float* b, float* y, int64_t n) const override {
    in_.add(ctx, a, b, y, n);
  }
  void add_bias(const ExecContext& ctx, float* y, const TensorView& b, int64_t n_rows, int64_t dim) const override {
    in_.add_bias(ctx, y, b, n_rows, dim);
  }
  void glu(const ExecContext& ctx, Activation act, float* gate, const float* up, int64_t n_rows,
           int64_t n_ff) const override {
    in_.glu(ctx, act, gate, up, n_rows, n_ff);
  }
  void softcap(const ExecContext& ctx, float* x, int64_t n, float cap) const override { in_.softcap(ctx, x, n, cap); }
  void gather_rows(const ExecContext& ctx, const float* src, int64_t dim, const int32_t* index, int64_t n_rows,
                   float* dst) const override {
    in_.gather_rows(ctx, src, dim, index, n_rows, dst);
  }
  void qkv_rows(const ExecContext& ctx, const QkvRows& r) const override { in_.qkv_rows(ctx, r); }
  int attention_tile_rows() const override { return in_.attention_tile_rows(); }
  void attention(const ExecContext& ctx, const AttentionCall& a) const override { in_.attention(ctx, a); }
  void moe_combine(const ExecContext& ctx, const MoeCombine& m) const override { in_.moe_combine(ctx, m); }

 private:
  const ComputeBackend& in_;
  ActivationObserver& obs_;
};

}  // namespace flashlm
