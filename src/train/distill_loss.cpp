#include "train/distill_loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace flashlm::train {

double distill_loss(const float* logits, int64_t T, int64_t V, const factory::KlBase& teacher,
                    std::span<const int64_t> rows, const int32_t* next, const DistillLossConfig& cfg, float* dlogits,
                    DistillLossParts* parts) {
  const double tau = cfg.temperature;
  const auto k = static_cast<int64_t>(teacher.top_k);
  int64_t n = 0;
  for (int64_t t = 0; t < T; ++t) n += rows[static_cast<size_t>(t)] >= 0 ? 1 : 0;
  if (dlogits != nullptr) std::fill(dlogits, dlogits + T * V, 0.0f);
  DistillLossParts p;
  p.n = n;
  if (n == 0) {
    if (parts != nullptr) *parts = p;
    return 0.0;
  }
  std::vector<char> in_top(static_cast<size_t>(V), 0);
  std::vector<double> zt(static_cast<size_t>(V));
  double kl_sum = 0.0, ce_sum = 0.0;
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t r = rows[static_cast<size_t>(t)];
    if (r < 0) continue;
    const float* z = logits + t * V;
    const int32_t* ids = teacher.ids.data() + r * k;
    const float* logp = teacher.logp.data() + r * k;
    for (int64_t j = 0; j < k; ++j) in_top[static_cast<size_t>(ids[j])] = 1;
    // Log-normalisers of the tempered student over the whole vocabulary and over the
    // tokens outside the teacher's top-k.
    double mx = -inf, mx_rest = -inf;
    for (int64_t j = 0; j < V; ++j) {
      zt[static_cast<size_t>(j)] = static_cast<double>(z[j]) / tau;
      mx = std::max(mx, zt[static_cast<size_t>(j)]);
      if (!in_top[static_cast<size_t>(j)]) mx_rest = std::max(mx_rest, zt[static_cast<size_t>(j)]);
    }
    double s = 0.0, s_rest = 0.0;
    for (int64_t j = 0; j < V; ++j) {
      const double e = std::exp(zt[static_cast<size_t>(j)] - mx);
      s += e;
      if (!in_top[static_cast<size_t>(j)]) s_rest += std::exp(zt[static_cast<size_t>(j)] - mx_rest);
    }
    const double lse = mx + std::log(s);
    const bool has_rest = k < V;
    const double lse_rest = has_rest ? mx_rest + std::log(s_rest) : -inf;
    // The teacher's rest counts only when some token is outside its top-k (a full-vocabulary
    // row can carry a rounding-size rest that has no outcome to go to).
    const double p_rest = has_rest ? std::exp(static_cast<double>(teacher.log_rest[static_cast<size_t>(r)])) : 0.0;
    double kl = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      const double pj = std::exp(static_cast<double>(logp[j]));
      if (pj > 0.0) kl += pj * (static_cast<double>(logp[j]) - (zt[static_cast<size_t>(ids[j])] - lse));
    }
    if (p_rest > 0.0) kl += p_rest * (static_cast<double>(teacher.log_rest[static_cast<size_t>(r)]) - (lse_rest - lse));
    kl_sum += kl;
    double ce = 0.0;
    if (cfg.ce_weight > 0.0f) {  // cross-entropy at temperature 1
      double m1 = -inf;
      for (int64_t j = 0; j < V; ++j) m1 = std::max(m1, static_cast<double>(z[j]));
      double s1 = 0.0;
      for (int64_t j = 0; j < V; ++j) s1 += std::exp(static_cast<double>(z[j]) - m1);
      const double lse1 = m1 + std::log(s1);
      ce = lse1 - static_cast<double>(z[next[t]]);
      ce_sum += ce;
      if (dlogits != nullptr) {
        float* d = dlogits + t * V;
        const double w = static_cast<double>(cfg.ce_weight) / static_cast<double>(n);
        for (int64_t j = 0; j < V; ++j) d[j] += static_cast<float>(w * std::exp(static_cast<double>(z[j]) - lse1));
        d[next[t]] -= static_cast<float>(w);
      }
    }
    if (dlogits != nullptr) {
      // d(tau^2 KL)/dz_j = tau * (q_j - P_j) in the top-k, tau * (q_j - P_rest * q_j / q_rest) outside.
      float* d = dlogits + t * V;
      const double w = tau / static_cast<double>(n);
      for (int64_t j = 0; j < V; ++j) {
        const double q = std::exp(zt[static_cast<size_t>(j)] - lse);
        const double rest = in_top[static_cast<size_t>(j)] ? 0.0 : p_rest * std::exp(zt[static_cast<size_t>(j)] - lse_rest);
        d[j] += static_cast<float>(w * (q - rest));
      }
      for (int64_t j = 0; j < k; ++j) d[ids[j]] -= static_cast<float>(w * std::exp(static_cast<double>(logp[j])));
    }
    for (int64_t j = 0; j < k; ++j) in_top[static_cast<size_t>(ids[j])] = 0;
  }
  p.kl = kl_sum / static_cast<double>(n);
  p.ce = cfg.ce_weight > 0.0f ? ce_sum / static_cast<double>(n) : 0.0;
  if (parts != nullptr) *parts = p;
  return tau * tau * p.kl + static_cast<double>(cfg.ce_weight) * p.ce;
}

}  // namespace flashlm::train
