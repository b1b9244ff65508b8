// Bookkeeping for one pool of physical KV blocks, without the K/V storage itself: which
// blocks are free, who references them, and which full blocks carry a prefix hash so a
// later sequence can reuse them. Testable without a model.
//
// States of a block:
//   free     refcount 0, no hash: on the free list;
//   in use   refcount > 0 (sequence tables and pins hold references); with a hash it is
//            shared and immutable, without one it is private to a single sequence;
//   cached   refcount 0 with a hash: in the LRU list, found by lookup(), reused only when
//            no free block is left (eviction drops its hash).
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace flashlm {

class BlockPool {
 public:
  BlockPool(int64_t n_blocks, int block_size);

  int64_t n_blocks() const { return static_cast<int64_t>(ref_.size()); }
  // Blocks an allocation may take: free plus cached (evictable).
  int64_t available() const { return static_cast<int64_t>(free_.size()) + n_cached_; }
  int64_t n_free() const { return static_cast<int64_t>(free_.size()); }
  int64_t n_cached() const { return n_cached_; }  // refcount 0 with a hash
  int64_t n_hashed() const { return static_cast<int64_t>(by_hash_.size()); }
  int64_t n_used() const { return n_blocks() - available(); }  // referenced blocks
  int32_t refcount(int32_t b) const { return ref_[static_cast<size_t>(b)]; }
  uint64_t hash(int32_t b) const { return hash_[static_cast<size_t>(b)]; }
  uint64_t parent(int32_t b) const { return parent_[static_cast<size_t>(b)]; }  // of a hashed block

  // A block with refcount 1 and no hash: a free one, else the least recently used cached
  // one (evicted: its hash is forgotten). -1 when every block is referenced.
  int32_t allocate();
  void retain(int32_t b);   // +1 reference; a cached block leaves the LRU
  void release(int32_t b);  // -1 reference; at 0 it becomes cached (hash) or free

  // The block holding the full block with this hash whose stored parent hash and token
  // ids equal the arguments (a 64-bit hash alone is not trusted); -1 if none.
  int32_t lookup(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) const;
  // Names block b (referenced, full, written) by its hash so lookup() finds it. False,
  // and nothing changes, when the block already has a hash or another block has this
  // one (two sequences computed the same prefix at once: the first one wins).
  bool publish(int32_t b, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens);

 private:
  void lru_push_back(int32_t b);
  void lru_unlink(int32_t b);
  void forget(int32_t b);  // drops b's hash

  int block_size_;
  std::vector<int32_t> ref_;
  std::vector<uint64_t> hash_;      // 0: none
  std::vector<uint64_t> parent_;    // the previous block's hash in the chain
  std::vector<int32_t> tokens_;     // [n_blocks][block_size] token ids of hashed blocks
  std::vector<int32_t> free_;       // a stack
  std::vector<int32_t> prev_, next_;  // LRU list of cached blocks (-1 ends), oldest at head
  int32_t lru_head_ = -1, lru_tail_ = -1;
  int64_t n_cached_ = 0;
  std::unordered_map<uint64_t, int32_t> by_hash_;
};

}  // namespace flashlm
