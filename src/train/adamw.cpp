#include "train/adamw.h"

#include <algorithm>
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

namespace {

// Sum of squares of x in double, over fixed blocks summed in block order: the same value
// whatever the thread count.
double sum_squares(const std::vector<float>& x, ThreadPool& pool) {
  constexpr int64_t kBlock = int64_t{1} << 16;
  const auto n = static_cast<int64_t>(x.size());
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> part(static_cast<size_t>(nb));
  pool.parallel_for(nb, [&](int64_t b0, int64_t b1, int) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* p = x.data() + b * kBlock;
      const int64_t len = std::min(kBlock, n - b * kBlock);
      double s = 0.0;
      for (int64_t k = 0; k < len; ++k) s += static_cast<double>(p[k]) * p[k];
      part[static_cast<size_t>(b)] = s;
    }
  });
  double s = 0.0;
  for (double v : part) s += v;
  return s;
}

}  // namespace

double AdamW::step(std::vector<Param>& params, float grad_scale, ThreadPool& pool) {
  double sq = 0.0;
  for (size_t i = 0; i < params.size(); ++i) {
    if (trainable_[i]) sq += sum_squares(params[i].g, pool);
  }
  const double norm = std::sqrt(sq) * grad_scale;
  float scale = grad_scale;
  if (cfg_.clip > 0.0f && norm > cfg_.clip) scale *= static_cast<float>(cfg_.clip / norm);
  const float lr = lr_at(cfg_, t_);
  ++t_;
  const float inv_bc1 = 1.0f / (1.0f - std::pow(cfg_.beta1, static_cast<float>(t_)));
  const float inv_bc2 = 1.0f / (1.0f - std::pow(cfg_.beta2, static_cast<float>(t_)));
  const float b1 = cfg_.beta1, b2 = cfg_.beta2, eps = cfg_.eps;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!trainable_[i]) continue;
    Param& p = params[i];
    // Matrices decay; vectors (norms, biases) do not. The embedding is a matrix in shape
    // but a lookup table in role: it does not decay either.
    const float wd = p.ne1 > 1 && p.name != "token_embd.weight" ? cfg_.weight_decay : 0.0f;
    float* __restrict w = p.w.data();
    const float* __restrict gr = p.g.data();
    float* __restrict m = m_[i].data();
    float* __restrict v = v_[i].data();
    pool.parallel_for(p.size(), [=](int64_t kb, int64_t ke, int) {
      for (int64_t k = kb; k < ke; ++k) {  // vectorized: no aliasing, no errno (-fno-math-errno)
        const float g = gr[k] * scale;
        const float mk = b1 * m[k] + (1.0f - b1) * g;
        const float vk = b2 * v[k] + (1.0f - b2) * g * g;
        m[k] = mk;
        v[k] = vk;
        w[k] -= lr * ((mk * inv_bc1) / (std::sqrt(vk * inv_bc2) + eps) + wd * w[k]);
      }
    });
  }
  return norm;
}

}  // namespace flashlm::train
