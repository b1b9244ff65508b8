#include "train/adamw.h"

#include <cmath>

namespace flashlm::train {

float lr_at(const AdamWConfig& c, int64_t t) {
  if (c.warmup > 0 && t < c.warmup) return c.lr * static_cast<float>(t + 1) / static_cast<float>(c.warmup);
  const int64_t span = std::max<int64_t>(1, c.total_steps - c.warmup);
  const double p = std::min(1.0, static_cast<double>(t - c.warmup) / static_cast<double>(span));
  const double floor = c.min_lr_ratio;
  return c.lr * static_cast<float>(floor + (1.0 - floor) * 0.5 * (1.0 + std::cos(M_PI * p)));
}

AdamW::AdamW(const std::vector<Param>& params, std::vector<bool> trainable, AdamWConfig cfg)
    : cfg_(cfg), trainable_(std::move(trainable)), m_(params.size()), v_(params.size()) {
  for (size_t i = 0; i < params.size(); ++i) {
    if (!trainable_[i]) continue;
    m_[i].assign(static_cast<size_t>(params[i].size()), 0.0f);
    v_[i].assign(static_cast<size_t>(params[i].size()), 0.0f);
  }
}

double AdamW::step(std::vector<Param>& params, float grad_scale, ThreadPool& pool) {
  double sq = 0.0;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!trainable_[i]) continue;
    for (float g : params[i].g) sq += static_cast<double>(g) * g;
  }
  const double norm = std::sqrt(sq) * grad_scale;
  float scale = grad_scale;
  if (cfg_.clip > 0.0f && norm > cfg_.clip) scale *= static_cast<float>(cfg_.clip / norm);
  const float lr = lr_at(cfg_, t_);
  ++t_;
  const float bc1 = 1.0f - std::pow(cfg_.beta1, static_cast<float>(t_));
  const float bc2 = 1.0f - std::pow(cfg_.beta2, static_cast<float>(t_));
  for (size_t i = 0; i < params.size(); ++i) {
    if (!trainable_[i]) continue;
    Param& p = params[i];
    // Matrices decay; vectors (norms, biases) do not. The embedding is a matrix in shape
    // but a lookup table in role: it does not decay either.
    const bool decay = p.ne1 > 1 && p.name != "token_embd.weight";
    float* m = m_[i].data();
    float* v = v_[i].data();
    pool.parallel_for(p.size(), [&](int64_t kb, int64_t ke, int) {
      for (int64_t k = kb; k < ke; ++k) {
        const float g = p.g[k] * scale;
        m[k] = cfg_.beta1 * m[k] + (1.0f - cfg_.beta1) * g;
        v[k] = cfg_.beta2 * v[k] + (1.0f - cfg_.beta2) * g * g;
        const float update = (m[k] / bc1) / (std::sqrt(v[k] / bc2) + cfg_.eps);
        p.w[k] -= lr * (update + (decay ? cfg_.weight_decay * p.w[k] : 0.0f));
      }
    });
  }
  return norm;
}

}  // namespace flashlm::train
