// Calibration: runs the dense model over calibration tokens and keeps, per layer, every
// token's FFN input row (the normalised hidden state the router will see) and its
// intermediate activations act(gate) * up (what the experts will carry).
#pragma once

#include <cstdint>
#include <vector>

#include "models/model.h"
#include "util/status.h"

namespace flashlm::moefy {

struct LayerSamples {
  int64_t n_ff = 0;
  std::vector<float> input;  // [n_tokens, n_embd]
  std::vector<float> act;    // [n_tokens, n_ff]
};

struct CalibrationData {
  int64_t n_embd = 0;
  int64_t n_tokens = 0;
  std::vector<LayerSamples> layers;  // [n_layer]
};

struct CalibrationOptions {
  int64_t max_tokens = 4096;  // tokens kept (position 0 of each chunk is skipped)
  int64_t n_ctx = 512;        // tokens per chunk, each evaluated from scratch
  int n_threads = 0;          // 0: usable_cpu_count()
};

// `tokens` is the tokenized calibration text; each chunk starts with BOS when bos >= 0.
Result<CalibrationData> calibrate(const Model& model, const std::vector<int32_t>& tokens, int32_t bos,
                                  const CalibrationOptions& opts);

}  // namespace flashlm::moefy
