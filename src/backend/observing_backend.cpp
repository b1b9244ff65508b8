#include "backend/observing_backend.h"

namespace flashlm {

void ObservingBackend::matmul(const ExecContext& ctx, const TensorView& w, const float* x, int64_t ldx, float* y,
                              int64_t ldy, int64_t n_tok) const {
  obs_.on_matmul(w, x, ldx, n_tok);
  in_.matmul(ctx, w, x, ldx, y, ldy, n_tok);
}

void ObservingBackend::matmul_group(const ExecContext& ctx, const MatmulOut* outs, int n_outs, const float* x,
                                    int64_t ldx, int64_t n_tok) const {
  for (int i = 0; i < n_outs; ++i) obs_.on_matmul(*outs[i].w, x, ldx, n_tok);
  in_.matmul_group(ctx, outs, n_outs, x, ldx, n_tok);
}

void ObservingBackend::expert_matmul(const ExecContext& ctx, const FfnWeights* experts, FfnPart part,
                                     const int32_t* offset, int n_expert, const float* x, int64_t ldx, float* y,
                                     int64_t ldy) const {
  for (int e = 0; e < n_expert; ++e) {
    const int64_t rows = offset[e + 1] - offset[e];
    if (rows > 0) obs_.on_matmul(ffn_part(experts[e], part), x + offset[e] * ldx, ldx, rows);
  }
  in_.expert_matmul(ctx, experts, part, offset, n_expert, x, ldx, y, ldy);
}

void ObservingBackend::rms_norm(const ExecContext& ctx, const float* x, const TensorView& w, float* y, int64_t n_rows,
                                int64_t dim, float eps) const {
  obs_.on_rms_norm(w, x, n_rows, dim);
  in_.rms_norm(ctx, x, w, y, n_rows, dim, eps);
}

}  // namespace flashlm
