// Structured pruning (flashlm prune): a smaller dense model made from a dense one by
// removing whole FFN neurons, whole attention heads or KV groups, and whole layers, each
// chosen from calibration activations (factory/activations.h):
//   - an FFN neuron j scores sqrt(mean x_j^2) * ||W_down[:, j]||_2, where x_j is its
//     activation (the input of ffn_down): Wanda's |W| * ||X|| applied to a whole neuron;
//   - a query head scores sqrt(mean energy of its attn_output input columns) *
//     ||W_o[:, its columns]||_F, and a KV group the sum of its query heads;
//   - a layer scores its block influence (1 - mean cos(layer input, layer output), ShortGPT).
// Every layer keeps the same number of neurons, groups and heads per group, so the
// config stays uniform and llama.cpp reads the file; the kept units are each layer's own.
//
// Planning (the scores and the choice) is separate from writing, so it is testable with
// hand-made statistics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "factory/activations.h"
#include "formats/gguf.h"
#include "util/status.h"

namespace flashlm::factory {

// What to keep; -1 means "all" (or, for drop_layers, none dropped).
struct PruneOptions {
  int64_t ffn_neurons = -1;     // FFN neurons kept in every layer, 1..n_ff
  int kv_groups = -1;           // KV groups (KV heads) kept per layer, 1..n_head_kv
  int heads_per_group = -1;     // query heads kept per kept group, 1..n_head / n_head_kv
  int drop_layers = 0;          // layers removed, 0..n_layer - 1
};

// The hyper-parameters pruning changes, as read from a file.
struct PruneShape {
  std::string arch;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int64_t n_ff = 0;
  int64_t n_embd = 0;
  int n_gqa() const { return n_head / n_head_kv; }
};

// Reads the shape of a dense llama / gemma3 / qwen2 / qwen3 file; an error for MoE
// layers and other architectures.
Result<PruneShape> read_prune_shape(const gguf::File& f);

// Checks the options against the shape (before any calibration is spent).
Status check_prune_options(const PruneShape& s, const PruneOptions& o);

// Per layer: ||W_down[:, j]||_2 for every neuron [n_ff], and ||W_o[:, head h]||_F for
// every query head [n_head] (the weight half of the scores).
struct WeightNorms {
  std::vector<std::vector<double>> ffn_down_cols;  // [n_layer][n_ff]
  std::vector<std::vector<double>> attn_out_heads; // [n_layer][n_head]
};
Result<WeightNorms> read_weight_norms(const gguf::File& f, const PruneShape& s);

// One layer of the pruned model: which source layer it comes from and what it keeps
// (indices into the source layer, ascending).
struct LayerPlan {
  int src = 0;
  std::vector<int64_t> neurons;  // [n_ff'] kept FFN neurons
  std::vector<int> kv_groups;    // [n_head_kv'] kept KV groups
  std::vector<int> heads;        // [n_head'] kept query heads, grouped by kept KV group
  double ffn_score_kept = 1.0;   // share of the layer's neuron scores kept
  double head_score_kept = 1.0;  // share of the layer's head scores kept
};

struct PrunePlan {
  PruneShape before, after;
  std::vector<LayerPlan> layers;   // the kept layers in order
  std::vector<int> dropped;        // removed layers, ascending
  std::vector<double> influence;   // [before.n_layer] block influence of every layer
  std::vector<std::string> warnings;
  bool keeps_all() const;          // nothing removed at all
};

// Chooses what to keep from the activations and weight norms: per layer the top-scoring
// neurons, KV groups and query heads within kept groups (ties to the lower index), and
// the layers of least block influence dropped.
Result<PrunePlan> plan_prune(const PruneShape& s, const ActivationStats& stats, const WeightNorms& norms,
                             const PruneOptions& o);

// Human-readable summary of a plan (one line per layer).
std::string describe_plan(const PrunePlan& p);

struct PruneWriteResult {
  std::vector<std::string> f16_fallbacks;  // tensors written as F16 (rows no longer fit their type's blocks)
  uint64_t bytes_written = 0;
};

// Writes the pruned model: blk.N tensors renumbered, rows/columns sliced (row slices keep
// the source bytes; column slices of block-quantized tensors are dequantized and
// requantized with the reference quantizer, or written as F16 when the new row length
// does not fit the type's block), the hyper-parameters rewritten. Written to a temporary
// file and renamed; refuses to write over the input.
Result<PruneWriteResult> write_pruned(const gguf::File& in, const PrunePlan& p, const std::string& out_path);

}  // namespace flashlm::factory
