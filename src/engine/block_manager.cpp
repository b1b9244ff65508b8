#include "engine/block_manager.h"

#include <algorithm>
#include <utility>

namespace flashlm {

BlockManager::BlockManager(KvCache& kv, std::unique_ptr<KvStore> store) : kv_(kv), store_(std::move(store)) {}

// Takes the cached prefix first (its blocks then count as taken), then checks that every
// group has blocks for the rest: global groups the whole stream, local ones their window
// (plus the blocks a step may straddle).
std::optional<BlockManager::Allocation> BlockManager::allocate(std::span<const int32_t> tokens, int64_t spare,
                                                               bool readmission, int64_t max_reuse) {
  const int s = kv_.seq_new();
  if (s < 0) return std::nullopt;
  // seq_reuse takes whole blocks before the span's last token: at most max_reuse tokens.
  const size_t n_span = max_reuse < static_cast<int64_t>(tokens.size()) ? static_cast<size_t>(std::max<int64_t>(max_reuse, 0)) + 1
                                                                         : tokens.size();
  const int64_t hit = kv_.seq_reuse(s, tokens.first(n_span));
  const auto n_tok = static_cast<int64_t>(tokens.size());
  const int bs = kv_.block_size();
  for (int g = 0; g < kv_.n_groups(); ++g) {
    int64_t need = kv_.blocks_needed(g, s, hit, n_tok);
    if (kv_.group_window(g) > 0) need = std::min<int64_t>(need, (kv_.group_window(g) - 1 + bs - 1) / bs + 2);
    if (need + spare > kv_.available(g)) {
      kv_.seq_free(s);
      return std::nullopt;
    }
  }
  (readmission ? recompute_hit_ : hit_) += hit;
  if (!readmission) miss_ += n_tok - hit;
  return Allocation{s, hit};
}

// Takes the longest prefix KvCache::match would reuse if every block in memory or on disk
// were cached (reusable_blocks), then reads the missing blocks. A record that fails
// verification, or whose tokens or parent differ from the prompt's, is not imported;
// match() then settles for a shorter prefix.
void BlockManager::read_through(std::span<const int32_t> tokens) {
  if (!store_) return;
  const int bs = kv_.block_size();
  const int64_t k_max = (static_cast<int64_t>(tokens.size()) - 1) / bs;
  if (k_max <= 0) return;
  const int ng = kv_.n_groups();
  std::vector<std::vector<uint64_t>> h(static_cast<size_t>(ng));
  for (int g = 0; g < ng; ++g) h[static_cast<size_t>(g)] = kv_.block_hashes(g, tokens.first(static_cast<size_t>(k_max * bs)));
  auto hash_of = [&](int g, int64_t i) { return h[static_cast<size_t>(g)][static_cast<size_t>(i)]; };
  auto parent_of = [&](int g, int64_t i) { return i > 0 ? hash_of(g, i - 1) : uint64_t{0}; };
  auto toks = [&](int64_t i) { return tokens.subspan(static_cast<size_t>(i * bs), static_cast<size_t>(bs)); };
  auto in_memory = [&](int g, int64_t i) { return kv_.pool(g).lookup(hash_of(g, i), parent_of(g, i), toks(i)) >= 0; };
  auto somewhere = [&](int g, int64_t i) { return in_memory(g, i) || store_->contains(hash_of(g, i)); };
  const int64_t k = kv_.reusable_blocks(k_max, somewhere);
  for (int g = 0; g < ng; ++g) {
    for (int64_t i = kv_.first_block(g, k * bs); i < k; ++i) {
      if (in_memory(g, i)) continue;
      // A gap in a global chain ends the reusable prefix there: stop reading.
      if (!load_block(g, hash_of(g, i), parent_of(g, i), toks(i)) && kv_.group_window(g) <= 0) break;
    }
  }
}

bool BlockManager::load_block(int g, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) {
  if (kv_.available(g) == 0) return false;  // every block is referenced: nowhere to put it
  std::optional<KvStoreBlock> rec = store_->get(hash);
  if (!rec) return false;  // gone, or corrupt (the store counts and removes those)
  const bool same = rec->block_hash == hash && rec->parent_hash == parent &&
                    std::equal(rec->tokens.begin(), rec->tokens.end(), tokens.begin(), tokens.end());
  if (!same || !kv_.import_block(g, hash, parent, tokens, rec->payload).is_ok()) {
    ++store_rejected_;
    return false;
  }
  ++store_loaded_;
  return true;
}

// Write-behind runs right after seq_publish, while the sequence still holds its new
// blocks (local groups release them only once they leave the window). export_block and
// put() copy the block on this thread; the disk write happens on the store's writer.
void BlockManager::publish(int seq, std::span<const int32_t> tokens, int64_t n_before, int64_t n_done) {
  kv_.seq_publish(seq, tokens, n_done);
  if (!store_) return;
  const int bs = kv_.block_size();
  const int64_t end = std::min<int64_t>(n_done, static_cast<int64_t>(tokens.size())) / bs;
  for (int g = 0; g < kv_.n_groups(); ++g) {
    const auto& t = kv_.group_table(g, seq);
    for (int64_t i = n_before / bs; i < end && i < static_cast<int64_t>(t.size()); ++i) {
      const int32_t b = t[static_cast<size_t>(i)];
      if (b < 0) continue;
      const uint64_t hash = kv_.pool(g).hash(b);
      // Unhashed: another sequence published the same block first (and stored it).
      if (hash == 0 || store_->contains(hash)) continue;
      store_->put(hash, kv_.pool(g).parent(b), tokens.subspan(static_cast<size_t>(i * bs), static_cast<size_t>(bs)),
                  kv_.export_block(g, b));
    }
  }
}

void BlockManager::flush() {
  if (store_) store_->flush();
}

CacheStats BlockManager::stats() const {
  CacheStats cs;
  for (int g = 0; g < kv_.n_groups(); ++g) {
    const KvGroupStats gs = kv_.group_stats(g);
    cs.groups.push_back(gs);
    cs.blocks_cached += gs.cached;
    cs.bytes_used += gs.used * gs.block_bytes;
    cs.bytes_cached += gs.cached * gs.block_bytes;
    cs.bytes_total += gs.n_blocks * gs.block_bytes;
  }
  cs.blocks_pinned = kv_.pinned_blocks();
  cs.hit_tokens = hit_;
  cs.miss_tokens = miss_;
  cs.recompute_hit_tokens = recompute_hit_;
  cs.store_enabled = store_ != nullptr;
  cs.store_blocks_loaded = store_loaded_;
  cs.store_blocks_rejected = store_rejected_;
  return cs;
}

}  // namespace flashlm
