#include "train/moe_grad.h"

#include <algorithm>
#include <cmath>

#include "models/moe.h"

namespace flashlm::train {
namespace {

using Vec = std::vector<float>;

// models/moe.cpp's clamp on the sum of the selected weights before dividing by it.
constexpr float kMinWeightSum = 6.103515625e-5f;

float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

Vec zeros(int64_t n) { return Vec(static_cast<size_t>(n), 0.0f); }

// The gating scores of every expert, as moe_route computes them.
void gating_scores(const MoeConfig& m, const float* logits, float* scores) {
  const int n = m.n_expert;
  if (m.gating == ExpertGating::kSigmoid) {
    for (int e = 0; e < n; ++e) scores[e] = sigmoid(logits[e]);
    return;
  }
  float mx = logits[0];
  for (int e = 1; e < n; ++e) mx = std::max(mx, logits[e]);
  float sum = 0.0f;
  for (int e = 0; e < n; ++e) sum += std::exp(logits[e] - mx);
  for (int e = 0; e < n; ++e) scores[e] = std::exp(logits[e] - mx) / sum;
}

}  // namespace

int64_t MoeActs::bytes() const {
  size_t n = (ids.size() + n_used.size() + offset.size() + row_token.size() + slot_row.size()) * sizeof(int32_t);
  for (const Vec* v : {&logits, &weights, &xg, &gate, &up, &h, &y, &sh_gate, &sh_up, &sh_h, &sh_y, &sh_logit}) {
    n += v->size() * sizeof(float);
  }
  return static_cast<int64_t>(n);
}

void moe_fwd(const MoeConfig& m, Glu glu, const MoeParamPtrs& w, const float* x, int64_t T, int64_t d, float* out,
             MoeActs* a, ThreadPool& pool) {
  const int E = m.n_expert, k = m.n_expert_used;
  const int64_t ff = m.n_ff_exp;
  a->logits = zeros(T * E);
  matmul_fwd(x, w.router, a->logits.data(), T, d, E, pool);
  a->ids.assign(static_cast<size_t>(T * k), 0);
  a->weights = zeros(T * k);
  a->n_used.assign(static_cast<size_t>(T), 0);
  std::vector<float> scores(static_cast<size_t>(E));
  std::vector<int32_t> order(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    a->n_used[static_cast<size_t>(t)] = moe_route(m, a->logits.data() + t * E, scores.data(), order.data(),
                                                  a->ids.data() + t * k, a->weights.data() + t * k);
  }
  // Group (token, slot) pairs by expert, tokens ascending within an expert.
  a->offset.assign(static_cast<size_t>(E + 1), 0);
  for (int64_t t = 0; t < T; ++t) {
    for (int j = 0; j < a->n_used[static_cast<size_t>(t)]; ++j) ++a->offset[static_cast<size_t>(a->ids[t * k + j] + 1)];
  }
  for (int e = 0; e < E; ++e) a->offset[static_cast<size_t>(e + 1)] += a->offset[static_cast<size_t>(e)];
  const int64_t rows = a->offset[static_cast<size_t>(E)];
  a->row_token.assign(static_cast<size_t>(rows), 0);
  a->slot_row.assign(static_cast<size_t>(T * k), -1);
  std::vector<int32_t> fill(a->offset.begin(), a->offset.end() - 1);
  for (int64_t t = 0; t < T; ++t) {
    for (int j = 0; j < a->n_used[static_cast<size_t>(t)]; ++j) {
      const int32_t row = fill[static_cast<size_t>(a->ids[t * k + j])]++;
      a->row_token[static_cast<size_t>(row)] = static_cast<int32_t>(t);
      a->slot_row[static_cast<size_t>(t * k + j)] = row;
    }
  }
  a->xg = zeros(rows * d);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(x + static_cast<int64_t>(a->row_token[static_cast<size_t>(r)]) * d, d, a->xg.data() + r * d);
  }
  a->gate = zeros(rows * ff);
  a->up = zeros(rows * ff);
  a->h = zeros(rows * ff);
  a->y = zeros(rows * d);
  for (int e = 0; e < E; ++e) {
    const int64_t r0 = a->offset[static_cast<size_t>(e)], n = a->offset[static_cast<size_t>(e + 1)] - r0;
    if (n == 0) continue;
    matmul_fwd(a->xg.data() + r0 * d, w.gate + e * ff * d, a->gate.data() + r0 * ff, n, d, ff, pool);
    matmul_fwd(a->xg.data() + r0 * d, w.up + e * ff * d, a->up.data() + r0 * ff, n, d, ff, pool);
    glu_fwd(glu, a->gate.data() + r0 * ff, a->up.data() + r0 * ff, a->h.data() + r0 * ff, n * ff);
    matmul_fwd(a->h.data() + r0 * ff, w.down + e * d * ff, a->y.data() + r0 * d, n, ff, d, pool);
  }
  // Each token sums its experts in its own top-k order, then the shared expert.
  std::fill(out, out + T * d, 0.0f);
  for (int64_t t = 0; t < T; ++t) {
    float* o = out + t * d;
    for (int j = 0; j < a->n_used[static_cast<size_t>(t)]; ++j) {
      const float wt = a->weights[static_cast<size_t>(t * k + j)];
      const float* yr = a->y.data() + static_cast<int64_t>(a->slot_row[static_cast<size_t>(t * k + j)]) * d;
      for (int64_t i = 0; i < d; ++i) o[i] += wt * yr[i];
    }
  }
  if (m.n_ff_shexp > 0) {
    const int64_t fs = m.n_ff_shexp;
    a->sh_gate = zeros(T * fs);
    a->sh_up = zeros(T * fs);
    a->sh_h = zeros(T * fs);
    a->sh_y = zeros(T * d);
    matmul_fwd(x, w.sh_gate, a->sh_gate.data(), T, d, fs, pool);
    matmul_fwd(x, w.sh_up, a->sh_up.data(), T, d, fs, pool);
    glu_fwd(glu, a->sh_gate.data(), a->sh_up.data(), a->sh_h.data(), T * fs);
    matmul_fwd(a->sh_h.data(), w.sh_down, a->sh_y.data(), T, fs, d, pool);
    if (m.shexp_gate) {
      a->sh_logit = zeros(T);
      matmul_fwd(x, w.sh_inp, a->sh_logit.data(), T, d, 1, pool);
    }
    for (int64_t t = 0; t < T; ++t) {
      const float g = m.shexp_gate ? sigmoid(a->sh_logit[static_cast<size_t>(t)]) : 1.0f;
      for (int64_t i = 0; i < d; ++i) out[t * d + i] += g * a->sh_y[static_cast<size_t>(t * d + i)];
    }
  }
}

void moe_bwd(const MoeConfig& m, Glu glu, const MoeParamPtrs& w, const MoeActs& a, const float* x, const float* dout,
             int64_t T, int64_t d, float* dx, const MoeGradPtrs& g, ThreadPool& pool) {
  const int E = m.n_expert, k = m.n_expert_used;
  const int64_t ff = m.n_ff_exp;
  const int64_t rows = a.offset[static_cast<size_t>(E)];
  // The weighted sum: each expert row's output gradient, and each routing weight's.
  Vec dy = zeros(rows * d), dweight = zeros(T * k);
  for (int64_t t = 0; t < T; ++t) {
    const float* go = dout + t * d;
    for (int j = 0; j < a.n_used[static_cast<size_t>(t)]; ++j) {
      const int64_t r = a.slot_row[static_cast<size_t>(t * k + j)];
      const float wt = a.weights[static_cast<size_t>(t * k + j)];
      double dw = 0.0;
      for (int64_t i = 0; i < d; ++i) {
        dy[static_cast<size_t>(r * d + i)] = wt * go[i];
        dw += static_cast<double>(go[i]) * a.y[static_cast<size_t>(r * d + i)];
      }
      dweight[static_cast<size_t>(t * k + j)] = static_cast<float>(dw);
    }
  }
  // Each expert's FFN over its rows, the input gradient scattered back to the tokens.
  Vec dh = zeros(rows * ff), dgate = zeros(rows * ff), dup = zeros(rows * ff), dxg = zeros(rows * d);
  for (int e = 0; e < E; ++e) {
    const int64_t r0 = a.offset[static_cast<size_t>(e)], n = a.offset[static_cast<size_t>(e + 1)] - r0;
    if (n == 0) continue;
    matmul_bwd(a.h.data() + r0 * ff, w.down + e * d * ff, dy.data() + r0 * d, dh.data() + r0 * ff,
               g.down != nullptr ? g.down + e * d * ff : nullptr, n, ff, d, pool);
    glu_bwd(glu, a.gate.data() + r0 * ff, a.up.data() + r0 * ff, dh.data() + r0 * ff, dgate.data() + r0 * ff,
            dup.data() + r0 * ff, n * ff);
    matmul_bwd(a.xg.data() + r0 * d, w.gate + e * ff * d, dgate.data() + r0 * ff, dxg.data() + r0 * d,
               g.gate != nullptr ? g.gate + e * ff * d : nullptr, n, d, ff, pool);
    matmul_bwd(a.xg.data() + r0 * d, w.up + e * ff * d, dup.data() + r0 * ff, dxg.data() + r0 * d,
               g.up != nullptr ? g.up + e * ff * d : nullptr, n, d, ff, pool);
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = dx + static_cast<int64_t>(a.row_token[static_cast<size_t>(r)]) * d;
    for (int64_t i = 0; i < d; ++i) dst[i] += dxg[static_cast<size_t>(r * d + i)];
  }
  // Routing weights -> gating scores -> router logits (nothing under unit weights).
  if (!m.unit_weights) {
    Vec dlogits = zeros(T * E), scores(static_cast<size_t>(E)), dscore(static_cast<size_t>(E));
    for (int64_t t = 0; t < T; ++t) {
      gating_scores(m, a.logits.data() + t * E, scores.data());
      std::fill(dscore.begin(), dscore.end(), 0.0f);
      const int used = a.n_used[static_cast<size_t>(t)];
      const int32_t* ids = a.ids.data() + t * k;
      const float* dw = dweight.data() + t * k;
      if (m.norm_weights) {  // w_j = scale * s_j / max(S, eps), S the selected scores' sum
        float sum = 0.0f;
        for (int j = 0; j < used; ++j) sum += scores[static_cast<size_t>(ids[j])];
        const float denom = std::max(sum, kMinWeightSum);
        double dot = 0.0;  // sum_j dw_j s_j, through S when it is not clamped
        for (int j = 0; j < used; ++j) dot += static_cast<double>(dw[j]) * scores[static_cast<size_t>(ids[j])];
        const double via_sum = sum >= kMinWeightSum ? dot / (static_cast<double>(denom) * denom) : 0.0;
        for (int j = 0; j < used; ++j) {
          dscore[static_cast<size_t>(ids[j])] =
              static_cast<float>(m.weights_scale * (static_cast<double>(dw[j]) / denom - via_sum));
        }
      } else {
        for (int j = 0; j < used; ++j) dscore[static_cast<size_t>(ids[j])] = m.weights_scale * dw[j];
      }
      float* dl = dlogits.data() + t * E;
      if (m.gating == ExpertGating::kSigmoid) {
        for (int e = 0; e < E; ++e) dl[e] = dscore[static_cast<size_t>(e)] * scores[static_cast<size_t>(e)] * (1.0f - scores[static_cast<size_t>(e)]);
      } else {
        double sd = 0.0;
        for (int e = 0; e < E; ++e) sd += static_cast<double>(scores[static_cast<size_t>(e)]) * dscore[static_cast<size_t>(e)];
        for (int e = 0; e < E; ++e) {
          dl[e] = static_cast<float>(scores[static_cast<size_t>(e)] * (dscore[static_cast<size_t>(e)] - sd));
        }
      }
    }
    matmul_bwd(x, w.router, dlogits.data(), dx, g.router, T, d, E, pool);
  }
  if (m.n_ff_shexp > 0) {
    const int64_t fs = m.n_ff_shexp;
    Vec dsh_y = zeros(T * d);
    Vec dsh_logit = m.shexp_gate ? zeros(T) : Vec();
    for (int64_t t = 0; t < T; ++t) {
      const float gt = m.shexp_gate ? sigmoid(a.sh_logit[static_cast<size_t>(t)]) : 1.0f;
      double dg = 0.0;
      for (int64_t i = 0; i < d; ++i) {
        dsh_y[static_cast<size_t>(t * d + i)] = gt * dout[t * d + i];
        dg += static_cast<double>(dout[t * d + i]) * a.sh_y[static_cast<size_t>(t * d + i)];
      }
      if (m.shexp_gate) dsh_logit[static_cast<size_t>(t)] = static_cast<float>(dg) * gt * (1.0f - gt);
    }
    if (m.shexp_gate) matmul_bwd(x, w.sh_inp, dsh_logit.data(), dx, g.sh_inp, T, d, 1, pool);
    Vec dsh_h = zeros(T * fs), dsh_gate = zeros(T * fs), dsh_up = zeros(T * fs);
    matmul_bwd(a.sh_h.data(), w.sh_down, dsh_y.data(), dsh_h.data(), g.sh_down, T, fs, d, pool);
    glu_bwd(glu, a.sh_gate.data(), a.sh_up.data(), dsh_h.data(), dsh_gate.data(), dsh_up.data(), T * fs);
    matmul_bwd(x, w.sh_gate, dsh_gate.data(), dx, g.sh_gate, T, d, fs, pool);
    matmul_bwd(x, w.sh_up, dsh_up.data(), dx, g.sh_up, T, d, fs, pool);
  }
}

}  // namespace flashlm::train
