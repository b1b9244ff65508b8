// AdamW over the trainable parameters (decoupled weight decay on matrices only: norms,
// biases and embeddings are not decayed), the learning-rate schedule (linear warm-up,
// then cosine decay to a floor) and global-norm gradient clipping. State is F32, one m and
// one v per trainable element, kept beside the F32 master weights.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "train/train_model.h"

namespace flashlm::train {

struct AdamWConfig {
  float lr = 1e-4f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  float clip = 1.0f;            // global gradient norm limit; 0: none
  int64_t warmup = 0;           // steps of linear warm-up
  int64_t total_steps = 1;      // the cosine reaches min_lr_ratio * lr here
  float min_lr_ratio = 0.1f;
};

// The learning rate of step t (0-based).
float lr_at(const AdamWConfig& c, int64_t t);

class AdamW {
 public:
  // trainable[i]: whether params[i] is updated (and has state).
  AdamW(const std::vector<Param>& params, std::vector<bool> trainable, AdamWConfig cfg);

  // One update from the gradients in Param::g, scaled by grad_scale (1 / accumulated
  // micro-batches) and clipped; returns the gradient norm before clipping. Elements are
  // independent, so the pool splits each tensor (results do not depend on the split).
  double step(std::vector<Param>& params, float grad_scale, ThreadPool& pool);

  int64_t t() const { return t_; }
  const AdamWConfig& config() const { return cfg_; }
  const std::vector<bool>& trainable() const { return trainable_; }
  // Optimizer state of params[i] (empty when it does not train), for checkpoints.
  std::vector<float>& m(size_t i) { return m_[i]; }
  std::vector<float>& v(size_t i) { return v_[i]; }
  void set_t(int64_t t) { t_ = t; }

 private:
  AdamWConfig cfg_;
  std::vector<bool> trainable_;
  std::vector<std::vector<float>> m_, v_;
  int64_t t_ = 0;  // updates done
};

}  // namespace flashlm::train
