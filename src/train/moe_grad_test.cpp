// The MoE layer's backward against central finite differences, for each routing form
// the families use (softmax top-k with and without normalisation, sigmoid with a scale,
// unit weights, an adaptive k, a shared expert with and without its gate). A sample whose
// perturbation changes which experts are chosen is skipped: the loss is not
// differentiable there, and the backward (like every MoE trainer) treats the choice as
// fixed. The forward is checked against the inference layer (models/moe.h) elsewhere:
// TrainModel.ForwardMatchesLlamaCppLogits runs the MoE models through both.
#include "train/moe_grad.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace flashlm::train {
namespace {

struct Weights {
  std::vector<float> router, gate, up, down, sh_gate, sh_up, sh_down, sh_inp;
  MoeParamPtrs ptrs() const {
    auto p = [](const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
    return {p(router), p(gate), p(up), p(down), p(sh_gate), p(sh_up), p(sh_down), p(sh_inp)};
  }
};

std::vector<float> randn(size_t n, std::mt19937& rng, float s) {
  std::normal_distribution<float> d(0.0f, s);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// loss = sum(out * probe): its gradient wrt out is probe.
double loss_of(const MoeConfig& m, const Weights& w, const std::vector<float>& x, const std::vector<float>& probe,
               int64_t T, int64_t d, ThreadPool& pool, std::vector<int32_t>* ids) {
  MoeActs a;
  std::vector<float> out(static_cast<size_t>(T * d));
  moe_fwd(m, Glu::kSilu, w.ptrs(), x.data(), T, d, out.data(), &a, pool);
  if (ids != nullptr) {
    *ids = a.ids;
    ids->insert(ids->end(), a.n_used.begin(), a.n_used.end());
  }
  double l = 0.0;
  for (size_t i = 0; i < out.size(); ++i) l += static_cast<double>(out[i]) * probe[i];
  return l;
}

void check(const MoeConfig& m, const char* what) {
  ThreadPool pool(2);
  const int64_t T = 7, d = 16, ff = m.n_ff_exp, E = m.n_expert, fs = m.n_ff_shexp;
  std::mt19937 rng(17);
  Weights w;
  w.router = randn(static_cast<size_t>(E * d), rng, 0.5f);
  w.gate = randn(static_cast<size_t>(E * ff * d), rng, 0.3f);
  w.up = randn(static_cast<size_t>(E * ff * d), rng, 0.3f);
  w.down = randn(static_cast<size_t>(E * d * ff), rng, 0.3f);
  if (fs > 0) {
    w.sh_gate = randn(static_cast<size_t>(fs * d), rng, 0.3f);
    w.sh_up = randn(static_cast<size_t>(fs * d), rng, 0.3f);
    w.sh_down = randn(static_cast<size_t>(d * fs), rng, 0.3f);
    if (m.shexp_gate) w.sh_inp = randn(static_cast<size_t>(d), rng, 0.5f);
  }
  std::vector<float> x = randn(static_cast<size_t>(T * d), rng, 1.0f);
  const std::vector<float> probe = randn(static_cast<size_t>(T * d), rng, 1.0f);

  MoeActs a;
  std::vector<float> out(static_cast<size_t>(T * d)), dx(static_cast<size_t>(T * d), 0.0f);
  moe_fwd(m, Glu::kSilu, w.ptrs(), x.data(), T, d, out.data(), &a, pool);
  Weights g;  // each weight beside its gradient, zeroed to the weight's size
  const std::vector<std::pair<std::vector<float>*, std::vector<float>*>> tensors = {
      {&w.router, &g.router}, {&w.gate, &g.gate},       {&w.up, &g.up},         {&w.down, &g.down},
      {&w.sh_gate, &g.sh_gate}, {&w.sh_up, &g.sh_up}, {&w.sh_down, &g.sh_down}, {&w.sh_inp, &g.sh_inp}};
  for (auto [wt, gt] : tensors) gt->assign(wt->size(), 0.0f);
  auto gp = [](std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
  const MoeGradPtrs grads{gp(g.router), gp(g.gate),  gp(g.up),      gp(g.down),
                          gp(g.sh_gate), gp(g.sh_up), gp(g.sh_down), gp(g.sh_inp)};
  moe_bwd(m, Glu::kSilu, w.ptrs(), a, x.data(), probe.data(), T, d, dx.data(), grads, pool);

  std::vector<int32_t> ids0;
  loss_of(m, w, x, probe, T, d, pool, &ids0);
  int checked = 0, skipped = 0;
  double num = 0.0, den = 0.0;
  auto probe_fd = [&](std::vector<float>& v, float analytic, size_t i) {
    const float keep = v[i];
    const float h = 1e-3f;
    std::vector<int32_t> ids_p, ids_m;
    v[i] = keep + h;
    const double lp = loss_of(m, w, x, probe, T, d, pool, &ids_p);
    v[i] = keep - h;
    const double lm = loss_of(m, w, x, probe, T, d, pool, &ids_m);
    v[i] = keep;
    if (ids_p != ids0 || ids_m != ids0) {
      ++skipped;
      return;
    }
    const double fd = (lp - lm) / (2.0 * h);
    num += (fd - analytic) * (fd - analytic);
    den += fd * fd;
    ++checked;
  };
  for (auto [wt, gt] : tensors) {
    if (wt->empty()) continue;
    for (int s = 0; s < 12; ++s) {
      const size_t i = rng() % wt->size();
      probe_fd(*wt, (*gt)[i], i);
    }
  }
  for (size_t i = 0; i < x.size(); i += 5) probe_fd(x, dx[i], i);
  const double rel = std::sqrt(num / den);
  std::printf("[moe fd %s] relative error %.2e over %d samples (%d skipped: routing changed)\n", what, rel, checked,
              skipped);
  EXPECT_GT(checked, 60) << what;
  EXPECT_LT(rel, 2e-3) << what;
  double router_abs = 0.0;
  for (float v : g.router) router_abs += std::fabs(v);
  if (m.unit_weights) {
    EXPECT_EQ(router_abs, 0.0) << what << ": unit weights pass no gradient to the router";
  } else {
    EXPECT_GT(router_abs, 0.0) << what;
  }
}

MoeConfig base_config() {
  MoeConfig m;
  m.n_expert = 6;
  m.n_expert_used = 2;
  m.n_ff_exp = 8;
  return m;
}

TEST(MoeGrad, SoftmaxTopK) { check(base_config(), "softmax top-2"); }

TEST(MoeGrad, SoftmaxTopKNormalised) {
  MoeConfig m = base_config();
  m.n_expert_used = 3;
  m.norm_weights = true;
  check(m, "softmax top-3, normalised");
}

TEST(MoeGrad, SigmoidScaledWithSharedExpert) {
  MoeConfig m = base_config();
  m.gating = ExpertGating::kSigmoid;
  m.norm_weights = true;
  m.weights_scale = 2.5f;
  m.n_ff_shexp = 12;
  check(m, "sigmoid, normalised, scale 2.5, shared expert");
}

TEST(MoeGrad, GatedSharedExpert) {
  MoeConfig m = base_config();
  m.n_ff_shexp = 12;
  m.shexp_gate = true;
  check(m, "softmax top-2, gated shared expert");
}

TEST(MoeGrad, UnitWeightsAndAdaptiveK) {
  MoeConfig m = base_config();
  m.n_expert_used = 4;
  m.unit_weights = true;
  m.adaptive_threshold = 0.6f;
  check(m, "unit weights, adaptive k");
}

}  // namespace
}  // namespace flashlm::train
