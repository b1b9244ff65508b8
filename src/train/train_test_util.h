// Shared by the training tests: a central difference of a model's loss at one weight.
#pragma once

#include <cstdint>
#include <vector>

#include "train/train_model.h"

namespace flashlm::train {

// (loss(w_i + h) - loss(w_i - h)) / 2h for element i of p, which is left as it was; the
// loss is the mean cross-entropy of targets after tokens, in float summed in double.
inline double central_difference(TrainModel& m, Param& p, size_t i, float h, const std::vector<int32_t>& tokens,
                                 const std::vector<int32_t>& targets, ThreadPool& pool) {
  const auto T = static_cast<int64_t>(tokens.size());
  const float keep = p.w[i];
  p.w[i] = keep + h;
  const double lp = *m.forward(tokens.data(), targets.data(), T, pool, nullptr);
  p.w[i] = keep - h;
  const double lm = *m.forward(tokens.data(), targets.data(), T, pool, nullptr);
  p.w[i] = keep;
  return (lp - lm) / (2.0 * h);
}

}  // namespace flashlm::train
