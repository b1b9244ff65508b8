// KV blocks of the running sequences: allocation at admission (taking the longest cached
// prefix, kv/kv_cache.h), growth before each step (local groups first release what left
// their window), publishing of newly full blocks, pins, and the persistent store
// (kv/kv_store.h): read-through of a prompt's reusable prefix at admission, write-behind
// of every block published. The scheduler plans steps through this class and never
// touches the cache's tables or the store itself. The cache belongs to the model runner
// (runner.h), which writes and reads the blocks this class hands out. Single-threaded:
// the scheduler thread calls it; the store is thread-safe itself.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "kv/kv_cache.h"
#include "kv/kv_store.h"
#include "util/status.h"

namespace flashlm {

// The prefix cache, for monitoring.
struct CacheStats {
  int64_t blocks_cached = 0;   // unreferenced blocks kept for reuse (evictable)
  int64_t blocks_pinned = 0;   // references held by warm() pins
  int64_t hit_tokens = 0;      // prompt tokens reused at requests' first admission (usage's cached tokens)
  int64_t miss_tokens = 0;     // prompt tokens not found cached at first admission
  int64_t recompute_hit_tokens = 0;  // tokens preempted sequences found cached when readmitted
  int64_t bytes_used = 0;      // referenced blocks
  int64_t bytes_cached = 0;    // cached (unreferenced) blocks
  int64_t bytes_total = 0;     // all pools
  std::vector<KvGroupStats> groups;  // global layers first, then each sliding window
  // Persistent store (all zero when off). store.hits/misses count the store's own
  // lookups; blocks_loaded are blocks read from disk into the cache at admission.
  bool store_enabled = false;
  KvStoreStats store;               // blocks, bytes on disk, pending, writes, corrupt, dropped, ...
  int64_t store_blocks_loaded = 0;  // imported into memory from disk
  int64_t store_blocks_rejected = 0;  // read fine but tokens/parent/size did not match the prompt's block
};

class BlockManager {
 public:
  // store: null for none.
  explicit BlockManager(KvCache& kv, std::unique_ptr<KvStore> store = nullptr);

  struct Allocation {
    int seq = -1;      // KV sequence slot
    int64_t hit = 0;   // leading tokens whose KV was reused (n_past to continue from)
  };
  // Reads from the store the blocks of tokens' reusable prefix that memory lacks (disk
  // reads; callers hold no lock). No-op without a store.
  void read_through(std::span<const int32_t> tokens);
  // A slot holding the longest cached prefix of tokens, if every group then has the
  // blocks for the rest (local groups: their window) plus `spare` more; otherwise
  // nothing changes. nullopt also when no slot is free. The hit counts as a prompt's
  // (hit/miss tokens) or, for a preempted sequence's readmission, as a recompute's.
  // max_reuse bounds the prefix taken from the cache (a sequence scoring its prompt needs
  // the rows of the positions from there on).
  std::optional<Allocation> allocate(std::span<const int32_t> tokens, int64_t spare, bool readmission = false,
                                     int64_t max_reuse = INT64_MAX);
  // Backs positions [begin, end) of seq with blocks; fails, taking none, when a pool is dry.
  Status grow(int seq, int64_t begin, int64_t end) { return kv_.seq_prepare(seq, begin, end); }
  // After tokens[0, n_done) are written (n_before of them before this step): publishes
  // the newly full blocks and queues them to the store.
  void publish(int seq, std::span<const int32_t> tokens, int64_t n_before, int64_t n_done);
  void release(int seq) { kv_.seq_free(seq); }  // published blocks stay cached
  void pin(std::span<const int32_t> tokens) { kv_.pin(tokens); }
  void unpin(std::span<const int32_t> tokens) { kv_.unpin(tokens); }
  void flush();  // waits until queued store writes are on disk

  int64_t free_blocks() const { return kv_.free_blocks(); }
  int64_t used_blocks() const { return kv_.used_blocks(); }
  CacheStats stats() const;  // store: see store_stats(), which other threads may call
  KvStoreStats store_stats() const { return store_ ? store_->stats() : KvStoreStats{}; }

 private:
  bool load_block(int g, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens);

  KvCache& kv_;
  std::unique_ptr<KvStore> store_;
  int64_t store_loaded_ = 0, store_rejected_ = 0;
  int64_t hit_ = 0, miss_ = 0, recompute_hit_ = 0;  // tokens
};

}  // namespace flashlm
