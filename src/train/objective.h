// What a training run minimises on one sequence, and the held-out figure it reports: the
// seam between the training loop (finetune.h) and its losses. A sequence is T input
// tokens tokens[0..T) whose next tokens are tokens[1..T] (T + 1 tokens in all).
#pragma once

#include <cstdint>
#include <string>

#include "kernels/cpu/thread_pool.h"
#include "train/train_model.h"
#include "util/status.h"

namespace flashlm::train {

class Objective {
 public:
  virtual ~Objective() = default;
  // Adds the loss's gradient into m's parameters; returns the loss.
  virtual Result<double> step(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) = 0;
  // The held-out figure of one sequence (no gradient).
  virtual Result<double> held_out(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) = 0;
  // What held_out measures, for the progress line ("held-out loss", "held-out KL").
  virtual std::string held_out_name() const = 0;
};

// Next-token cross-entropy (fine-tuning); held out: the same loss.
class CrossEntropyObjective final : public Objective {
 public:
  Result<double> step(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) override {
    return m.step(tokens, tokens + 1, T, pool);
  }
  Result<double> held_out(TrainModel& m, const int32_t* tokens, int64_t T, ThreadPool& pool) override {
    return m.forward(tokens, tokens + 1, T, pool, nullptr);
  }
  std::string held_out_name() const override { return "held-out loss"; }
};

}  // namespace flashlm::train
