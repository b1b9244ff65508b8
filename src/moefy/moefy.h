// Dense -> MoE conversion: each layer's FFN neurons split into equal experts (balanced
// k-means on their activation patterns over calibration tokens), an optional shared
// expert of the most loaded neurons, and a fitted router; written as a GGUF that keeps
// every other tensor and key of the dense file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "models/config.h"
#include "moefy/calibrate.h"
#include "util/status.h"

namespace flashlm::moefy {

struct MoefyOptions {
  int n_expert = 8;
  int n_used = 2;
  int64_t n_shared = 0;             // neurons in the always-on shared expert (0: none)
  float adaptive_threshold = 0.0f;  // 0: off; else written as flashlm.moe.adaptive_threshold
  int kmeans_iters = 25;
  int64_t cluster_tokens = 1024;    // tokens whose activations form the neurons' features
  double ridge = 1e-3;
  uint64_t seed = 1;
};

struct LayerPlan {
  std::vector<int32_t> shared;                // neurons of the shared expert
  std::vector<std::vector<int32_t>> experts;  // [E] neurons of each expert
  std::vector<float> router;                  // [E, n_embd]
  double captured = 0.0;  // held-out mass captured by the router's top-k vs the best top-k
  double routed_share = 0.0;  // held-out: the router's top-k mass over all experts' mass
};

// The down-projection type of the experts: float types are kept (a gather is exact),
// quantized ones become Q8_0 (block 32, the most accurate type every kernel handles).
DType expert_down_type(DType dense_down);

// Checks that the options fit the model (divisibility of the FFN width, block sizes).
Status check_options(const gguf::File& dense, const ModelConfig& cfg, const MoefyOptions& o);

// Per layer: shared neurons, expert clustering and router.
Result<std::vector<LayerPlan>> plan_layers(const gguf::File& dense, const ModelConfig& cfg,
                                           const CalibrationData& calib, const MoefyOptions& o);

// Writes the MoE file: dense tensors other than ffn_{gate,up,down} copied from the map,
// expert tensors gathered (gate/up rows as stored; down columns requantized).
Status write_moe(const gguf::File& dense, const ModelConfig& cfg, const std::vector<LayerPlan>& plans,
                 const MoefyOptions& o, const std::string& path);

}  // namespace flashlm::moefy
