#include "backend/cpu_backend.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/host_attention.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_tiles.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/rope.h"

namespace flashlm {
namespace {

// Each token's cos/sin once per configuration, for every layer and head using it.
class CpuRopeTables final : public RopeTables {
 public:
  CpuRopeTables(const RopeSpec* specs, int n) {
    for (int i = 0; i < n; ++i) freqs_.emplace_back(specs[i].n_rot, specs[i].base, specs[i].scale, specs[i].factors);
  }
  void fill(const ExecContext& ctx, const int32_t* pos, int64_t n, float* cs) const override {
    ctx.pool->parallel_for(n, [&](int64_t b, int64_t e, int) {
      for (size_t c = 0; c < freqs_.size(); ++c) {
        const int64_t n_rot = freqs_[c].n_rot();
        float* table = cs + static_cast<int64_t>(c) * n * n_rot;
        for (int64_t t = b; t < e; ++t) freqs_[c].cos_sin(pos[t], table + t * n_rot);
      }
    });
  }

 private:
  std::vector<ops::RopeFreqs> freqs_;
};

class CpuBackend final : public ComputeBackend {
 public:
  BackendKind kind() const override { return BackendKind::kCpu; }
  Device device() const override { return Device::kCpu; }

  Result<TensorView> place(const TensorView& host) const override {
    TensorView v = host;
    v.device = Device::kCpu;
    return v;
  }

  std::unique_ptr<RopeTables> rope_tables(const RopeSpec* specs, int n_specs) const override {
    return std::make_unique<CpuRopeTables>(specs, n_specs);
  }

  void embed(const ExecContext& ctx, const TensorView& table, const int32_t* tokens, int64_t n, float scale,
             float* out) const override {
    const int64_t dim = table.ne[0];
    ctx.pool->parallel_for(n, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        dequantize_row(table, tokens[t], out + t * dim);
        if (scale != 1.0f) ops::scale(out + t * dim, scale, dim);
      }
    });
  }

  void matmul(const ExecContext& ctx, const TensorView& w, const float* x, int64_t ldx, float* y, int64_t ldy,
              int64_t n_tok) const override {
    flashlm::matmul(w, x, ldx, y, ldy, n_tok, *ctx.pool, MatmulOptions{ctx.batch_invariant});
  }

  void matmul_group(const ExecContext& ctx, const MatmulOut* outs, int n_outs, const float* x, int64_t ldx,
                    int64_t n_tok) const override {
    flashlm::matmul_group(outs, n_outs, x, ldx, n_tok, *ctx.pool, MatmulOptions{ctx.batch_invariant});
  }

  void matmul_rows(const ExecContext& ctx, const TensorView& w, int64_t row_begin, int64_t row_end, const float* x,
                   int64_t ldx, float* y, int64_t ldy, int64_t n_tok) const override {
    flashlm::matmul_rows(w, row_begin, row_end, x, ldx, y, ldy, n_tok, *ctx.pool, MatmulOptions{ctx.batch_invariant});
  }

  // One matmul per expert with rows, each split across the pool: each selected expert's
  // weights are read once per step.
  void expert_matmul(const ExecContext& ctx, const FfnWeights* experts, FfnPart part, const int32_t* offset,
                     int n_expert, const float* x, int64_t ldx, float* y, int64_t ldy) const override {
    for (int e = 0; e < n_expert; ++e) {
      const int64_t r0 = offset[e];
      const int64_t rows = offset[e + 1] - r0;
      if (rows == 0) continue;
      matmul(ctx, ffn_part(experts[e], part), x + r0 * ldx, ldx, y + r0 * ldy, ldy, rows);
    }
  }

  void rms_norm(const ExecContext& ctx, const float* x, const TensorView& w, float* y, int64_t n_rows, int64_t dim,
                float eps) const override {
    const float* wd = static_cast<const float*>(w.data);
    ctx.pool->parallel_for(n_rows, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) ops::rms_norm(x + t * dim, wd, y + t * dim, dim, eps);
    });
  }

  void add(const ExecContext&, const float* a, const float* b, float* y, int64_t n) const override {
    ops::add(a, b, y, n);
  }

  void add_bias(const ExecContext&, float* y, const TensorView& b, int64_t n_rows, int64_t dim) const override {
    const float* bd = static_cast<const float*>(b.data);
    for (int64_t t = 0; t < n_rows; ++t) ops::add(y + t * dim, bd, y + t * dim, dim);
  }

  void glu(const ExecContext& ctx, Activation act, float* gate, const float* up, int64_t n_rows,
           int64_t n_ff) const override {
    ctx.pool->parallel_for(n_rows, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        float* g = gate + t * n_ff;
        const float* u = up + t * n_ff;
        if (act == Activation::kSilu) ops::silu_mul(g, u, g, n_ff);
        else ops::gelu_tanh_mul(g, u, g, n_ff);
      }
    });
  }

  void softcap(const ExecContext&, float* x, int64_t n, float cap) const override {
    for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
  }

  void gather_rows(const ExecContext& ctx, const float* src, int64_t dim, const int32_t* index, int64_t n_rows,
                   float* dst) const override {
    ctx.pool->parallel_for(n_rows, [&](int64_t b, int64_t e, int) {
      for (int64_t r = b; r < e; ++r) {
        std::memcpy(dst + r * dim, src + index[r] * dim, sizeof(float) * static_cast<size_t>(dim));
      }
    });
  }

  void qkv_rows(const ExecContext& ctx, const QkvRows& r) const override {
    const int64_t hd = r.head_dim;
    const int64_t q_dim = r.n_head * hd;
    const int64_t kv_dim = r.n_head_kv * hd;
    const int64_t n_rot = r.rope->n_rot;
    const DType type = r.kv->config().type;
    ctx.pool->parallel_for(r.n, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const float* cs = r.rope_cs + t * n_rot;
        float* qt = r.q + t * q_dim;
        float* kt = r.k + t * kv_dim;
        for (int h = 0; h < r.n_head; ++h) {
          if (r.q_norm) ops::rms_norm(qt + h * hd, r.q_norm, qt + h * hd, hd, r.norm_eps);
          ops::rope_apply(qt + h * hd, n_rot, r.rope->style, cs);
        }
        for (int h = 0; h < r.n_head_kv; ++h) {
          if (r.k_norm) ops::rms_norm(kt + h * hd, r.k_norm, kt + h * hd, hd, r.norm_eps);
          ops::rope_apply(kt + h * hd, n_rot, r.rope->style, cs);
        }
        const int sq = r.seq[t];
        kv_row_store(type, kt, r.kv->k_slot(r.layer, sq, r.pos[t]), kv_dim);
        kv_row_store(type, r.v + t * kv_dim, r.kv->v_slot(r.layer, sq, r.pos[t]), kv_dim);
      }
    });
  }

  // Threads take items largest first from a shared counter, as causal tiles differ in cost.
  int attention_tile_rows() const override { return kAttnMaxRows; }

  void attention(const ExecContext& ctx, const AttentionCall& a) const override {
    const AttentionParams ap = host_attention_params(a);
    for_each_attention_item(ctx, a, [&](const AttentionWork& w, const PagedKvView& view) {
      AttentionQueries qs;
      qs.q = a.q + w.row * a.q_stride;
      qs.q_stride = a.q_stride;
      qs.out = a.out + w.row * a.q_stride;
      qs.out_stride = a.q_stride;
      qs.pos0 = a.pos[w.row];
      qs.n_q = w.n_q;
      attention_chunk(qs, view, ap, a.window, w.head_begin, w.head_end);
    });
  }

  void moe_combine(const ExecContext& ctx, const MoeCombine& m) const override {
    ctx.pool->parallel_for(m.n, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        float* o = m.out + t * m.dim;
        std::fill(o, o + m.dim, 0.0f);
        for (int j = 0; j < m.n_used[t]; ++j) {
          const int64_t row = m.slot_row[t * m.k + j];
          ops::axpy(m.weights[t * m.k + j], m.yg + row * m.dim, o, m.dim);
        }
        if (m.shared != nullptr) {
          const float g = m.shared_gate != nullptr ? 1.0f / (1.0f + std::exp(-m.shared_gate[t])) : 1.0f;
          ops::axpy(g, m.shared + t * m.dim, o, m.dim);
        }
      }
    });
  }
};

}  // namespace

std::unique_ptr<ComputeBackend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace flashlm
