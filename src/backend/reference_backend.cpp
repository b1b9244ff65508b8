#include "backend/reference_backend.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "backend/host_attention.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "quant/quant.h"

namespace flashlm {
namespace {

// Work items of this many (query, head) rows, as the CPU kernel's tiles: the reference
// computes each query alone, so the value only spreads the work.
constexpr int kReferenceTileRows = 32;

// The reference applies ops::rope, which computes each angle itself: no tables.
class NoRopeTables final : public RopeTables {
 public:
  void fill(const ExecContext&, const int32_t*, int64_t, float*) const override {}
};

// A row converted to f32 by the traits table (f32 rows copied), and back.
void row_to_float(DType type, const void* src, float* dst, int64_t n) {
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  type_traits(type).to_float(src, dst, n);
}

void row_from_float(DType type, const float* src, void* dst, int64_t n) {
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  type_traits(type).from_float(src, dst, n);
}

class ReferenceBackend final : public ComputeBackend {
 public:
  BackendKind kind() const override { return BackendKind::kReference; }
  Device device() const override { return Device::kCpu; }

  Result<TensorView> place(const TensorView& host) const override {
    TensorView v = host;
    v.device = Device::kCpu;
    return v;
  }

  std::unique_ptr<RopeTables> rope_tables(const RopeSpec*, int) const override {
    return std::make_unique<NoRopeTables>();
  }

  void embed(const ExecContext&, const TensorView& table, const int32_t* tokens, int64_t n, float scale,
             float* out) const override {
    const int64_t dim = table.ne[0];
    for (int64_t t = 0; t < n; ++t) {
      float* o = out + t * dim;
      row_to_float(table.dtype, table.row_ptr(tokens[t]), o, dim);
      if (scale != 1.0f) {
        for (int64_t i = 0; i < dim; ++i) o[i] *= scale;
      }
    }
  }

  void matmul(const ExecContext& ctx, const TensorView& w, const float* x, int64_t ldx, float* y, int64_t ldy,
              int64_t n_tok) const override {
    matmul_rows(ctx, w, 0, w.ne[1], x, ldx, y, ldy, n_tok);
  }

  // Rows split across the pool; each output is matmul_reference's own dot product.
  void matmul_rows(const ExecContext& ctx, const TensorView& w, int64_t row_begin, int64_t row_end, const float* x,
                   int64_t ldx, float* y, int64_t ldy, int64_t n_tok) const override {
    ctx.pool->parallel_for(row_end - row_begin, [&](int64_t b, int64_t e, int) {
      TensorView part = w;
      part.data = const_cast<uint8_t*>(w.row_ptr(row_begin + b));
      part.ne[1] = e - b;
      part.ne[2] = part.ne[3] = 1;
      matmul_reference(part, x, ldx, y + b, ldy, n_tok);
    });
  }

  void expert_matmul(const ExecContext& ctx, const FfnWeights* experts, FfnPart part, const int32_t* offset,
                     int n_expert, const float* x, int64_t ldx, float* y, int64_t ldy) const override {
    for (int e = 0; e < n_expert; ++e) {
      const int64_t r0 = offset[e];
      const int64_t rows = offset[e + 1] - r0;
      if (rows > 0) matmul(ctx, ffn_part(experts[e], part), x + r0 * ldx, ldx, y + r0 * ldy, ldy, rows);
    }
  }

  void rms_norm(const ExecContext&, const float* x, const TensorView& w, float* y, int64_t n_rows, int64_t dim,
                float eps) const override {
    const float* wd = static_cast<const float*>(w.data);
    for (int64_t t = 0; t < n_rows; ++t) ops::rms_norm_reference(x + t * dim, wd, y + t * dim, dim, eps);
  }

  void add(const ExecContext&, const float* a, const float* b, float* y, int64_t n) const override {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }

  void add_bias(const ExecContext&, float* y, const TensorView& b, int64_t n_rows, int64_t dim) const override {
    const float* bd = static_cast<const float*>(b.data);
    for (int64_t t = 0; t < n_rows; ++t) {
      for (int64_t i = 0; i < dim; ++i) y[t * dim + i] += bd[i];
    }
  }

  void glu(const ExecContext&, Activation act, float* gate, const float* up, int64_t n_rows,
           int64_t n_ff) const override {
    for (int64_t t = 0; t < n_rows; ++t) {
      float* g = gate + t * n_ff;
      if (act == Activation::kSilu) ops::silu_mul_reference(g, up + t * n_ff, g, n_ff);
      else ops::gelu_tanh_mul_reference(g, up + t * n_ff, g, n_ff);
    }
  }

  void softcap(const ExecContext&, float* x, int64_t n, float cap) const override {
    for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
  }

  void gather_rows(const ExecContext&, const float* src, int64_t dim, const int32_t* index, int64_t n_rows,
                   float* dst) const override {
    for (int64_t r = 0; r < n_rows; ++r) {
      std::memcpy(dst + r * dim, src + index[r] * dim, sizeof(float) * static_cast<size_t>(dim));
    }
  }

  void qkv_rows(const ExecContext&, const QkvRows& r) const override {
    const int64_t hd = r.head_dim;
    const int64_t q_dim = r.n_head * hd;
    const int64_t kv_dim = r.n_head_kv * hd;
    const RopeSpec& rs = *r.rope;
    const DType type = r.kv->config().type;
    for (int64_t t = 0; t < r.n; ++t) {
      float* qt = r.q + t * q_dim;
      float* kt = r.k + t * kv_dim;
      for (int h = 0; h < r.n_head; ++h) {
        if (r.q_norm) ops::rms_norm_reference(qt + h * hd, r.q_norm, qt + h * hd, hd, r.norm_eps);
        ops::rope(qt + h * hd, hd, rs.n_rot, r.pos[t], rs.base, rs.scale, rs.style, rs.factors);
      }
      for (int h = 0; h < r.n_head_kv; ++h) {
        if (r.k_norm) ops::rms_norm_reference(kt + h * hd, r.k_norm, kt + h * hd, hd, r.norm_eps);
        ops::rope(kt + h * hd, hd, rs.n_rot, r.pos[t], rs.base, rs.scale, rs.style, rs.factors);
      }
      row_from_float(type, kt, r.kv->k_slot(r.layer, r.seq[t], r.pos[t]), kv_dim);
      row_from_float(type, r.v + t * kv_dim, r.kv->v_slot(r.layer, r.seq[t], r.pos[t]), kv_dim);
    }
  }

  // attention_paged_ref one query token at a time; items are spread over the pool.
  int attention_tile_rows() const override { return kReferenceTileRows; }

  void attention(const ExecContext& ctx, const AttentionCall& a) const override {
    const AttentionParams ap = host_attention_params(a);
    for_each_attention_item(ctx, a, [&](const AttentionWork& w, const PagedKvView& view) {
      for (int64_t t = w.row; t < w.row + w.n_q; ++t) {
        const int64_t pos = a.pos[t];
        const int64_t first = a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1) : 0;
        attention_paged_ref(a.q + t * a.q_stride, view, ap, first, pos, w.head_begin, w.head_end,
                            a.out + t * a.q_stride);
      }
    });
  }

  void moe_combine(const ExecContext&, const MoeCombine& m) const override {
    for (int64_t t = 0; t < m.n; ++t) {
      float* o = m.out + t * m.dim;
      std::fill(o, o + m.dim, 0.0f);
      for (int j = 0; j < m.n_used[t]; ++j) {
        const float wj = m.weights[t * m.k + j];
        const float* y = m.yg + static_cast<int64_t>(m.slot_row[t * m.k + j]) * m.dim;
        for (int64_t i = 0; i < m.dim; ++i) o[i] += wj * y[i];
      }
      if (m.shared != nullptr) {
        const float g = m.shared_gate != nullptr ? 1.0f / (1.0f + std::exp(-m.shared_gate[t])) : 1.0f;
        for (int64_t i = 0; i < m.dim; ++i) o[i] += g * m.shared[t * m.dim + i];
      }
    }
  }
};

}  // namespace

std::unique_ptr<ComputeBackend> make_reference_backend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace flashlm
