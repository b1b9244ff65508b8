#include "models/moe.h"

#include <algorithm>
#include <cmath>


namespace flashlm {
namespace {

// llama.cpp clamps the sum of the selected weights before dividing by it.
constexpr float kMinWeightSum = 6.103515625e-5f;

float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// Softmax probability of each expert, from the logits' max and sum of exponentials.
struct SoftmaxStats {
  float max;
  float sum;
};

SoftmaxStats softmax_stats(const float* logits, int n) {
  SoftmaxStats st{logits[0], 0.0f};
  for (int e = 1; e < n; ++e) st.max = std::max(st.max, logits[e]);
  for (int e = 0; e < n; ++e) st.sum += std::exp(logits[e] - st.max);
  return st;
}

}  // namespace

int moe_route(const MoeConfig& m, const float* logits, float* scores, int32_t* order, int32_t* ids,
              float* weights) {
  const int n_exp = m.n_expert;
  const int k = m.n_expert_used;
  const SoftmaxStats sm = softmax_stats(logits, n_exp);
  for (int e = 0; e < n_exp; ++e) {
    scores[e] = m.gating == ExpertGating::kSoftmax ? std::exp(logits[e] - sm.max) / sm.sum : sigmoid(logits[e]);
  }
  for (int e = 0; e < n_exp; ++e) order[e] = e;
  std::partial_sort(order, order + k, order + n_exp, [scores](int32_t a, int32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  int used = k;
  if (m.adaptive_threshold > 0.0f) {
    // The fewest top experts whose softmax mass reaches the threshold.
    float mass = 0.0f;
    for (int j = 0; j < k; ++j) {
      mass += std::exp(logits[order[j]] - sm.max) / sm.sum;
      if (mass >= m.adaptive_threshold) {
        used = j + 1;
        break;
      }
    }
  }
  float sum = 0.0f;
  for (int j = 0; j < used; ++j) {
    ids[j] = order[j];
    weights[j] = scores[order[j]];
    sum += weights[j];
  }
  if (m.unit_weights) {
    // A dense FFN split into experts is the plain sum of its parts.
    for (int j = 0; j < used; ++j) weights[j] = 1.0f;
    return used;
  }
  const float norm = m.norm_weights ? 1.0f / std::max(sum, kMinWeightSum) : 1.0f;
  for (int j = 0; j < used; ++j) weights[j] = weights[j] * norm * m.weights_scale;
  return used;
}

void MoeScratch::reserve(const ModelConfig& cfg, int64_t n) {
  if (capacity >= n) return;
  int64_t n_exp = 0, k = 0, n_ff = 0;
  bool any = false;
  for (const LayerConfig& l : cfg.layers) {
    if (l.ffn != FfnKind::kMoe) continue;
    any = true;
    n_exp = std::max<int64_t>(n_exp, l.moe.n_expert);
    k = std::max<int64_t>(k, l.moe.n_expert_used);
    n_ff = std::max<int64_t>({n_ff, l.moe.n_ff_exp, l.moe.n_ff_shexp});
  }
  if (!any) return;
  const auto sz = [](int64_t a, int64_t b) { return static_cast<size_t>(a * b); };
  logits.resize(sz(n, n_exp));
  scores.resize(sz(n, n_exp));
  order.resize(sz(n, n_exp));
  ids.resize(sz(n, k));
  weights.resize(sz(n, k));
  n_used.resize(static_cast<size_t>(n));
  offset.resize(static_cast<size_t>(n_exp + 1));
  row_token.resize(sz(n, k));
  slot_row.resize(sz(n, k));
  xg.resize(sz(n * k, cfg.n_embd));
  yg.resize(sz(n * k, cfg.n_embd));
  // The shared expert runs over n rows, the routed ones over n * k.
  gate.resize(sz(n * k, n_ff));
  up.resize(sz(n * k, n_ff));
  shared.resize(sz(n, cfg.n_embd));
  shared_gate.resize(static_cast<size_t>(n));
  capacity = n;
}

void moe_ffn(const ComputeBackend& be, const ExecContext& ctx, const MoeConfig& m, const MoeWeights& w,
             Activation act, const float* x, int64_t n, int64_t n_embd, float* out, MoeScratch& s) {
  const int n_exp = m.n_expert;
  const int k = m.n_expert_used;

  // Router and per-token selection.
  be.matmul(ctx, w.router, x, n_embd, s.logits.data(), n_exp, n);
  ctx.pool->parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      s.n_used[static_cast<size_t>(t)] =
          moe_route(m, s.logits.data() + t * n_exp, s.scores.data() + t * n_exp, s.order.data() + t * n_exp,
                    s.ids.data() + t * k, s.weights.data() + t * k);
    }
  });

  // Group (token, slot) pairs by expert, tokens ascending within an expert.
  std::fill(s.offset.begin(), s.offset.begin() + n_exp + 1, 0);
  for (int64_t t = 0; t < n; ++t) {
    for (int j = 0; j < s.n_used[static_cast<size_t>(t)]; ++j) ++s.offset[static_cast<size_t>(s.ids[t * k + j] + 1)];
  }
  for (int e = 0; e < n_exp; ++e) s.offset[static_cast<size_t>(e + 1)] += s.offset[static_cast<size_t>(e)];
  const int64_t n_rows = s.offset[static_cast<size_t>(n_exp)];
  {
    int32_t* fill = s.order.data();  // router order is consumed; reuse as per-expert cursors
    std::copy(s.offset.begin(), s.offset.begin() + n_exp, fill);
    for (int64_t t = 0; t < n; ++t) {
      for (int j = 0; j < s.n_used[static_cast<size_t>(t)]; ++j) {
        const int32_t row = fill[s.ids[t * k + j]]++;
        s.row_token[static_cast<size_t>(row)] = static_cast<int32_t>(t);
        s.slot_row[static_cast<size_t>(t * k + j)] = row;
      }
    }
  }
  be.gather_rows(ctx, x, n_embd, s.row_token.data(), n_rows, s.xg.data());

  // Each selected expert's gated FFN over its rows: the grouped matmuls read each
  // selected expert once.
  const int64_t n_ff = m.n_ff_exp;
  const FfnWeights* ex = w.experts.data();
  const int32_t* off = s.offset.data();
  be.expert_matmul(ctx, ex, FfnPart::kGate, off, n_exp, s.xg.data(), n_embd, s.gate.data(), n_ff);
  be.expert_matmul(ctx, ex, FfnPart::kUp, off, n_exp, s.xg.data(), n_embd, s.up.data(), n_ff);
  be.glu(ctx, act, s.gate.data(), s.up.data(), n_rows, n_ff);
  be.expert_matmul(ctx, ex, FfnPart::kDown, off, n_exp, s.gate.data(), n_ff, s.yg.data(), n_embd);

  // Shared expert over every token, gated per token when the layer has a gate.
  if (m.n_ff_shexp > 0) {
    ffn_dense(be, ctx, w.shexp, act, x, n, n_embd, s.shared.data(), s.gate.data(), s.up.data());
    if (m.shexp_gate) be.matmul(ctx, w.shexp_gate, x, n_embd, s.shared_gate.data(), 1, n);
  }

  // Each token sums its experts in its own top-k order (batch-independent), then the
  // shared expert.
  MoeCombine c;
  c.n = n;
  c.dim = n_embd;
  c.k = k;
  c.yg = s.yg.data();
  c.slot_row = s.slot_row.data();
  c.weights = s.weights.data();
  c.n_used = s.n_used.data();
  c.shared = m.n_ff_shexp > 0 ? s.shared.data() : nullptr;
  c.shared_gate = m.n_ff_shexp > 0 && m.shexp_gate ? s.shared_gate.data() : nullptr;
  c.out = out;
  be.moe_combine(ctx, c);
}

namespace {

// One token through one gated FFN on the reference backend.
void ffn_reference_row(const ComputeBackend& ref, const ExecContext& ctx, const FfnWeights& w, Activation act,
                       const float* x, int64_t n_embd, float* y, std::vector<float>& g, std::vector<float>& u) {
  const int64_t n_ff = w.gate.ne[1];
  g.resize(static_cast<size_t>(n_ff));
  u.resize(static_cast<size_t>(n_ff));
  ref.matmul(ctx, w.gate, x, n_embd, g.data(), n_ff, 1);
  ref.matmul(ctx, w.up, x, n_embd, u.data(), n_ff, 1);
  ref.glu(ctx, act, g.data(), u.data(), 1, n_ff);
  ref.matmul(ctx, w.down, g.data(), n_ff, y, n_embd, 1);
}

}  // namespace

void moe_ffn_reference(const ComputeBackend& ref, const ExecContext& ctx, const MoeConfig& m, const MoeWeights& w,
                       Activation act, const float* x, int64_t n, int64_t n_embd, float* out) {
  const auto ne = static_cast<size_t>(m.n_expert);
  std::vector<float> logits(ne), scores(ne), weights(ne), y(static_cast<size_t>(n_embd)), g, u;
  std::vector<int32_t> order(ne), ids(ne);
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * n_embd;
    float* o = out + t * n_embd;
    ref.matmul(ctx, w.router, xt, n_embd, logits.data(), m.n_expert, 1);
    const int used = moe_route(m, logits.data(), scores.data(), order.data(), ids.data(), weights.data());
    std::fill(o, o + n_embd, 0.0f);
    for (int j = 0; j < used; ++j) {
      ffn_reference_row(ref, ctx, w.experts[static_cast<size_t>(ids[static_cast<size_t>(j)])], act, xt, n_embd,
                        y.data(), g, u);
      for (int64_t i = 0; i < n_embd; ++i) o[i] += weights[static_cast<size_t>(j)] * y[static_cast<size_t>(i)];
    }
    if (m.n_ff_shexp > 0) {
      ffn_reference_row(ref, ctx, w.shexp, act, xt, n_embd, y.data(), g, u);
      float gate = 1.0f;
      if (m.shexp_gate) {
        ref.matmul(ctx, w.shexp_gate, xt, n_embd, &gate, 1, 1);
        gate = sigmoid(gate);
      }
      for (int64_t i = 0; i < n_embd; ++i) o[i] += gate * y[static_cast<size_t>(i)];
    }
  }
}

}  // namespace flashlm
