// Paged KV cache: K and V for every layer live in fixed-size blocks of `block_size`
// token slots drawn from one pool; each sequence owns a block table mapping its logical
// block index (pos / block_size) to a physical block. Sequences share one memory budget
// instead of each reserving the full context.
#pragma once

#include <cstdint>
#include <vector>

#include "util/status.h"

namespace flashlm {

struct KvConfig {
  int n_layer = 0;
  int64_t kv_dim = 0;      // n_head_kv * head_dim (floats per token slot per layer)
  int block_size = 32;     // token slots per block
  int64_t n_blocks = 0;    // blocks in the pool
  int max_seqs = 1;        // concurrent sequences
};

class KvCache {
 public:
  explicit KvCache(const KvConfig& cfg);

  const KvConfig& config() const { return cfg_; }
  int block_size() const { return cfg_.block_size; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

  // Sequence slots: ids in [0, max_seqs). seq_new returns -1 when all are in use.
  int seq_new();
  void seq_free(int seq);
  bool seq_valid(int seq) const;
  // Backs positions [0, n_pos) with blocks. Either all needed blocks are taken or none
  // (prepare, then commit): on failure the cache is unchanged.
  Status seq_reserve(int seq, int64_t n_pos);
  // Positions the sequence can hold without another reserve.
  int64_t seq_capacity(int seq) const;
  const std::vector<int32_t>& block_table(int seq) const { return tables_[static_cast<size_t>(seq)]; }

  // Token slot of (seq, pos) in a layer's K or V pool: kv_dim floats.
  float* k_slot(int layer, int seq, int64_t pos);
  float* v_slot(int layer, int seq, int64_t pos);
  const float* k_layer(int layer) const { return k_.data() + layer_stride() * layer; }
  const float* v_layer(int layer) const { return v_.data() + layer_stride() * layer; }

 private:
  size_t layer_stride() const { return static_cast<size_t>(cfg_.n_blocks) * cfg_.block_size * cfg_.kv_dim; }
  size_t slot_offset(int seq, int64_t pos) const;

  KvConfig cfg_;
  std::vector<float> k_;  // [n_layer][n_blocks][block_size][kv_dim]
  std::vector<float> v_;
  std::vector<int32_t> free_;                 // free physical blocks (a stack)
  std::vector<std::vector<int32_t>> tables_;  // per sequence: logical -> physical block
  std::vector<uint8_t> in_use_;
};

}  // namespace flashlm
