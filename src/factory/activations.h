// Calibration statistics of a model's activations on a text: what the importance
// matrix (factory/imatrix.h) and the pruner (factory/prune.h) are computed from.
//
// The text is cut into chunks of n_ctx tokens, each starting with BOS where the model
// uses one, and each chunk runs as one forward pass (llama-imatrix's windowing). An
// ObservingBackend (backend/observing_backend.h) sees every weight matrix's input rows
// and the residual stream at each layer's first norm.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "models/model.h"
#include "util/status.h"

namespace flashlm::factory {

// Per-column sums of squared inputs of one weight matrix over every token that went
// through it; a 3-D stack of MoE experts has one set per expert (n_mat of them).
struct MatrixActivations {
  int64_t n_cols = 0;
  std::vector<double> sum_x2;  // [n_mat][n_cols]
  std::vector<int64_t> count;  // [n_mat] rows seen
  int64_t n_mat() const { return static_cast<int64_t>(count.size()); }
};

struct ActivationStats {
  // By weight name ("blk.3.ffn_down.weight"); only the blocks' matrices, like
  // llama-imatrix (not the embedding or the output).
  std::map<std::string, MatrixActivations> matrices;
  // Per layer: the sum over tokens of cos(layer input, layer output) on the residual
  // stream, and how many tokens it covers (the last layer is seen only at the rows whose
  // logits were computed: one per chunk).
  std::vector<double> layer_cos_sum;
  std::vector<int64_t> layer_cos_n;
  int64_t n_ctx = 0;
  int64_t n_chunks = 0;
  int64_t n_tokens = 0;

  // 1 - mean cosine: how much the layer changes the hidden state (ShortGPT's block
  // influence); 0 for a layer that was never seen.
  double block_influence(int layer) const;
};

struct CollectOptions {
  int64_t n_ctx = 512;
  int64_t max_chunks = 0;  // 0: every whole chunk of the text
  int n_threads = 0;       // 0: the CPUs this process may use
  std::function<void(int64_t chunk, int64_t n_chunks)> progress;  // after each chunk
};

// Runs the model over the tokens (bos < 0: the model uses none). Needs at least one
// whole chunk.
Result<ActivationStats> collect_activations(const Model& model, std::span<const int32_t> tokens, int32_t bos,
                                            const CollectOptions& opts);

}  // namespace flashlm::factory
