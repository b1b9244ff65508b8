// Paged KV cache with automatic prefix caching and sliding-window release.
//
// Layers are split into groups by attention window: global layers in one group, the
// layers of each sliding window in another. A group has its own pool of blocks (each
// block holds `block_size` token slots of K and V for every layer of the group) and its
// own block table per sequence, so a local group's pool can be sized by its window
// instead of the context. Attention keeps its interface (PagedKvView): the model takes
// the table of the layer's group.
//
// Prefix caching: a full block is named by a 64-bit hash chained over the token ids of
// every block before it and its own, rooted in the model identity and the KV layout
// (block size, kv_dim, layers, window). Blocks are reference-counted; a published
// (hashed) block is shared and never written again. A new sequence reuses the longest
// prefix whose blocks every group still has (seq_reuse); sequences that end or are
// preempted hand their published blocks to an LRU of cached blocks, which are evicted
// only when nothing is free. Only blocks that lie wholly before a prompt's last token
// are reused, so the last token is always run (its logits are needed) and it writes a
// block of its own: no copy-on-write is ever needed.
//
// Sliding windows: seq_prepare(seq, begin, end) first releases, in local groups, the
// blocks that no query at position >= begin can read (all keys < begin - window + 1);
// their table entries become -1, which attention never reads.
//
// A slot holds one token's kv_dim values of one layer in the cache's element type (f32,
// f16, or q8_0 blocks of 32 along head_dim), so a slot is row_bytes() bytes; writers
// quantize into it and attention (kernels/cpu/attention.h) reads that type.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string_view>
#include <vector>

#include "kv/block_pool.h"
#include "tensor/dtype.h"
#include "util/status.h"

namespace flashlm {

struct KvConfig {
  int n_layer = 0;
  int64_t kv_dim = 0;      // n_head_kv * head_dim (floats per token slot per layer)
  int block_size = 32;     // token slots per block
  int64_t n_blocks = 0;    // blocks in the pool of the global group
  int max_seqs = 1;        // concurrent sequences
  DType type = DType::F32; // element type of K and V rows (kv_type_from_name lists them)
  std::vector<int> layer_window;  // [n_layer] sliding window per layer (0: global); empty: all global
  int64_t n_blocks_local = 0;     // blocks in each sliding-window group's pool; 0: n_blocks
  uint64_t model_id = 0;          // identity of the weights (the root of every block hash)
};

// One group's memory, for reports.
struct KvGroupStats {
  int window = 0;          // 0: global layers
  int n_layers = 0;
  int64_t n_blocks = 0, used = 0, cached = 0, free = 0;  // used: referenced; cached: hashed, unreferenced
  int64_t block_bytes = 0;  // K and V of all the group's layers for one block
};

// The element types a KV cache stores, by the names --kv-type takes: f32, f16, q8_0. (q4_0 was
// measured and left out: +23% perplexity on SmolLM2, +69% on Gemma 3.)
Result<DType> kv_type_from_name(std::string_view name);
const char* kv_type_name(DType type);  // "f32" etc.; "?" for a type the cache does not store
// Bytes of one slot: n values of `type` (n a multiple of the type's block size), or 0.
size_t kv_row_bytes(DType type, int64_t n);

class KvCache {
 public:
  explicit KvCache(const KvConfig& cfg);

  const KvConfig& config() const { return cfg_; }
  int block_size() const { return cfg_.block_size; }
  int n_groups() const { return static_cast<int>(groups_.size()); }
  int group_of(int layer) const { return layer_group_[static_cast<size_t>(layer)]; }
  int group_window(int g) const { return groups_[static_cast<size_t>(g)].window; }
  KvGroupStats group_stats(int g) const;
  // Blocks an allocation may still take in group g (free + cached), and their sum.
  int64_t available(int g) const { return groups_[static_cast<size_t>(g)].pool.available(); }
  int64_t free_blocks() const;  // summed over groups
  int64_t used_blocks() const;  // referenced, summed over groups
  size_t bytes() const { return k_.size() + v_.size(); }
  // Bytes of one token slot of one layer (K or V): kv_dim values of config().type.
  size_t row_bytes() const { return row_bytes_; }
  // What a cache of this config allocates, without allocating it.
  static int64_t bytes_for(const KvConfig& cfg);

  // Sequence slots: ids in [0, max_seqs). seq_new returns -1 when all are in use.
  int seq_new();
  void seq_free(int seq);  // drops the sequence's references (published blocks stay cached)
  bool seq_valid(int seq) const { return seq >= 0 && seq < cfg_.max_seqs && in_use_[static_cast<size_t>(seq)]; }

  // The number of leading tokens whose KV could be reused: a multiple of block_size,
  // below tokens.size() (the last token is always run), such that every group has the
  // blocks the next query reads. Changes nothing.
  int64_t match(std::span<const int32_t> tokens) const;
  // match()'s rule with another notion of having a block: the largest k <= k_max such that
  // has(g, i) holds for every block i that a reuse of k blocks needs in every group g.
  int64_t reusable_blocks(int64_t k_max, const std::function<bool(int g, int64_t i)>& has) const;
  // First logical block a query at position p reads in group g.
  int64_t first_block(int g, int64_t p) const { return first_block(groups_[static_cast<size_t>(g)], p); }
  // For a new, empty sequence: takes references to the blocks of the longest reusable
  // prefix (match) and returns its length; the sequence then continues from there.
  int64_t seq_reuse(int seq, std::span<const int32_t> tokens);
  // Before writing positions [begin, end): releases local blocks that queries at >= begin
  // cannot read, then backs [begin, end) with blocks in every group. All needed blocks
  // are taken or none (the releases stand either way).
  Status seq_prepare(int seq, int64_t begin, int64_t end);
  // Blocks seq_prepare(seq, begin, end) would take from group g.
  int64_t blocks_needed(int g, int seq, int64_t begin, int64_t end) const;
  // After tokens[0, n_done) have been written: publishes the sequence's newly full blocks
  // so other sequences can reuse them. `tokens` is the sequence's whole token stream.
  void seq_publish(int seq, std::span<const int32_t> tokens, int64_t n_done);
  // Keeps positions [0, n) and forgets the rest; returns the length actually kept: less
  // than n (possibly 0) when a local group has released blocks that position n's query
  // would read. Blocks past the kept length are dropped, so shared blocks are never
  // overwritten.
  int64_t seq_truncate(int seq, int64_t n);
  // Whether every group has the blocks that queries at [begin, end) write and read.
  bool seq_covers(int seq, int64_t begin, int64_t end) const;

  // Pins the cached blocks of a token prefix (all of its full blocks in global groups,
  // the last window's in local ones) so they are never evicted; returns the tokens
  // pinned (a multiple of block_size). Pinning the same tokens again replaces the pin.
  int64_t pin(std::span<const int32_t> tokens);
  bool unpin(std::span<const int32_t> tokens);  // false when those tokens were not pinned
  int64_t pinned_blocks() const;

  // Block tables: logical block (pos / block_size) -> physical block of the layer's group;
  // -1 where a local group has released the block.
  const std::vector<int32_t>& block_table(int layer, int seq) const { return group_table(group_of(layer), seq); }
  const std::vector<int32_t>& group_table(int g, int seq) const {
    return groups_[static_cast<size_t>(g)].tables[static_cast<size_t>(seq)];
  }

  // Persistence hooks (a disk store keyed by block hash). A block's bytes are the K then
  // V slots of every layer of its group, in layer order. import_block puts a block into
  // group g's cache (unreferenced, evictable) under its hash, parent hash and tokens.
  std::vector<uint8_t> export_block(int g, int32_t block) const;
  Status import_block(int g, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens,
                      std::span<const uint8_t> bytes);
  // The hash chain of a token stream's full blocks in group g: what publish and lookup use.
  std::vector<uint64_t> block_hashes(int g, std::span<const int32_t> tokens) const;
  const BlockPool& pool(int g) const { return groups_[static_cast<size_t>(g)].pool; }

  // Token slot of (seq, pos) in a layer's K or V pool: row_bytes() bytes holding kv_dim
  // values of config().type.
  uint8_t* k_slot(int layer, int seq, int64_t pos) { return k_.data() + slot_offset(layer, seq, pos); }
  uint8_t* v_slot(int layer, int seq, int64_t pos) { return v_.data() + slot_offset(layer, seq, pos); }
  const uint8_t* k_layer(int layer) const { return k_.data() + layer_offset_[static_cast<size_t>(layer)]; }
  const uint8_t* v_layer(int layer) const { return v_.data() + layer_offset_[static_cast<size_t>(layer)]; }

 private:
  struct Group {
    int window = 0;
    std::vector<int> layers;
    uint64_t salt = 0;  // mixed into the chain hash: groups store different layers
    BlockPool pool;
    std::vector<std::vector<int32_t>> tables;  // per sequence
    Group(int w, int64_t n_blocks, int bs) : window(w), pool(n_blocks, bs) {}
  };
  struct PinRef {
    int group;
    int32_t block;
  };

  // Chain hashes of the first n_blocks full blocks (group-independent).
  void chain(std::span<const int32_t> tokens, int64_t n_blocks, std::vector<uint64_t>* out) const;
  uint64_t key(const Group& g, uint64_t chain_hash) const;
  int64_t first_block(const Group& g, int64_t p) const;
  int32_t find(const Group& g, const std::vector<uint64_t>& ch, std::span<const int32_t> tokens, int64_t i) const;
  void drop_blocks(int seq);  // releases every block of seq and forgets its chain
  size_t slot_offset(int layer, int seq, int64_t pos) const;  // in k_ or v_

  KvConfig cfg_;
  uint64_t root_ = 0;
  std::vector<Group> groups_;
  std::vector<int> layer_group_;
  size_t row_bytes_ = 0;
  std::vector<size_t> layer_offset_;  // bytes from the start of k_/v_ to a layer's pool
  std::vector<uint8_t> k_;  // per layer: [n_blocks of its group][block_size][row_bytes]
  std::vector<uint8_t> v_;
  std::vector<uint8_t> in_use_;
  std::vector<std::vector<uint64_t>> chains_;  // per sequence: chain hashes of its published blocks
  std::map<uint64_t, std::vector<PinRef>> pins_;  // by the chain hash of the pinned prefix's last block
};

}  // namespace flashlm
