#include "kv/block_pool.h"

#include <algorithm>
#include <cassert>

namespace flashlm {

BlockPool::BlockPool(int64_t n_blocks, int block_size)
    : block_size_(block_size),
      ref_(static_cast<size_t>(n_blocks), 0),
      hash_(static_cast<size_t>(n_blocks), 0),
      parent_(static_cast<size_t>(n_blocks), 0),
      tokens_(static_cast<size_t>(n_blocks) * static_cast<size_t>(block_size), -1),
      prev_(static_cast<size_t>(n_blocks), -1),
      next_(static_cast<size_t>(n_blocks), -1) {
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

void BlockPool::lru_push_back(int32_t b) {
  prev_[static_cast<size_t>(b)] = lru_tail_;
  next_[static_cast<size_t>(b)] = -1;
  if (lru_tail_ >= 0) next_[static_cast<size_t>(lru_tail_)] = b;
  else lru_head_ = b;
  lru_tail_ = b;
  ++n_cached_;
}

void BlockPool::lru_unlink(int32_t b) {
  const int32_t p = prev_[static_cast<size_t>(b)], n = next_[static_cast<size_t>(b)];
  if (p >= 0) next_[static_cast<size_t>(p)] = n;
  else lru_head_ = n;
  if (n >= 0) prev_[static_cast<size_t>(n)] = p;
  else lru_tail_ = p;
  prev_[static_cast<size_t>(b)] = next_[static_cast<size_t>(b)] = -1;
  --n_cached_;
}

void BlockPool::forget(int32_t b) {
  auto& h = hash_[static_cast<size_t>(b)];
  if (h == 0) return;
  auto it = by_hash_.find(h);
  if (it != by_hash_.end() && it->second == b) by_hash_.erase(it);
  h = 0;
}

int32_t BlockPool::allocate() {
  int32_t b = -1;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (lru_head_ >= 0) {
    b = lru_head_;  // least recently used
    lru_unlink(b);
    forget(b);
  } else {
    return -1;
  }
  ref_[static_cast<size_t>(b)] = 1;
  return b;
}

void BlockPool::retain(int32_t b) {
  auto& r = ref_[static_cast<size_t>(b)];
  if (r == 0) {
    assert(hash_[static_cast<size_t>(b)] != 0);  // only cached blocks are found again
    lru_unlink(b);
  }
  ++r;
}

void BlockPool::release(int32_t b) {
  auto& r = ref_[static_cast<size_t>(b)];
  assert(r > 0);
  if (--r > 0) return;
  if (hash_[static_cast<size_t>(b)] != 0) lru_push_back(b);
  else free_.push_back(b);
}

int32_t BlockPool::lookup(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) const {
  if (static_cast<int>(tokens.size()) != block_size_) return -1;
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const int32_t b = it->second;
  if (parent_[static_cast<size_t>(b)] != parent) return -1;
  const int32_t* t = tokens_.data() + static_cast<size_t>(b) * static_cast<size_t>(block_size_);
  return std::equal(tokens.begin(), tokens.end(), t) ? b : -1;
}

bool BlockPool::publish(int32_t b, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) {
  if (hash == 0 || static_cast<int>(tokens.size()) != block_size_) return false;
  if (ref_[static_cast<size_t>(b)] <= 0 || hash_[static_cast<size_t>(b)] != 0) return false;
  if (!by_hash_.emplace(hash, b).second) return false;
  hash_[static_cast<size_t>(b)] = hash;
  parent_[static_cast<size_t>(b)] = parent;
  std::copy(tokens.begin(), tokens.end(), tokens_.begin() + static_cast<std::ptrdiff_t>(b) * block_size_);
  return true;
}

}  // namespace flashlm
