// BlockPool bookkeeping: references, publishing, lookup verified against tokens, and
// eviction of cached blocks in least-recently-used order only when nothing is free.
#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace flashlm {
namespace {

std::vector<int32_t> toks(int32_t first, int n = 4) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(first + i);
  return t;
}

TEST(BlockPool, AllocateReleaseFree) {
  BlockPool p(3, 4);
  EXPECT_EQ(p.available(), 3);
  const int32_t a = p.allocate(), b = p.allocate(), c = p.allocate();
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_EQ(p.allocate(), -1);
  EXPECT_EQ(p.n_used(), 3);
  p.release(b);  // no hash: straight back to the free list
  EXPECT_EQ(p.n_free(), 1);
  EXPECT_EQ(p.n_cached(), 0);
  EXPECT_EQ(p.allocate(), b);
}

TEST(BlockPool, PublishedBlocksAreCachedAndFoundOnlyWithTheirTokens) {
  BlockPool p(2, 4);
  const int32_t a = p.allocate();
  ASSERT_TRUE(p.publish(a, 111, 0, toks(10)));
  EXPECT_FALSE(p.publish(a, 222, 0, toks(10)));  // already named
  const int32_t b = p.allocate();
  EXPECT_FALSE(p.publish(b, 111, 0, toks(10)));  // hash taken: the first block wins
  EXPECT_EQ(p.lookup(111, 0, toks(10)), a);
  EXPECT_EQ(p.lookup(111, 0, toks(11)), -1);  // same hash, other tokens: a collision, refused
  EXPECT_EQ(p.lookup(111, 7, toks(10)), -1);  // other parent
  EXPECT_EQ(p.lookup(333, 0, toks(10)), -1);
  p.release(a);
  EXPECT_EQ(p.n_cached(), 1);
  EXPECT_EQ(p.available(), 1);                // b is held
  EXPECT_EQ(p.lookup(111, 0, toks(10)), a);   // still found while cached
  p.retain(a);                                // a hit takes it back out of the LRU
  EXPECT_EQ(p.refcount(a), 1);
  EXPECT_EQ(p.n_cached(), 0);
  p.retain(a);                                // shared by two sequences
  p.release(a);
  EXPECT_EQ(p.n_cached(), 0);
  p.release(a);
  EXPECT_EQ(p.n_cached(), 1);
}

TEST(BlockPool, EvictsLeastRecentlyUsedOnlyWhenNothingIsFree) {
  BlockPool p(4, 2);
  std::vector<int32_t> b;
  for (int i = 0; i < 3; ++i) {
    b.push_back(p.allocate());
    ASSERT_TRUE(p.publish(b[i], 100 + i, 0, toks(i * 10, 2)));
  }
  // Released in the order 1, 0, 2: block 1 is the least recently used.
  p.release(b[1]);
  p.release(b[0]);
  p.release(b[2]);
  EXPECT_EQ(p.n_cached(), 3);
  EXPECT_EQ(p.n_free(), 1);
  const int32_t fresh = p.allocate();  // the free block first: nothing evicted
  EXPECT_EQ(p.n_cached(), 3);
  EXPECT_EQ(p.lookup(101, 0, toks(10, 2)), b[1]);
  const int32_t e1 = p.allocate();  // evicts block 1
  EXPECT_EQ(e1, b[1]);
  EXPECT_EQ(p.hash(e1), 0u);
  EXPECT_EQ(p.lookup(101, 0, toks(10, 2)), -1);
  EXPECT_EQ(p.lookup(100, 0, toks(0, 2)), b[0]);
  // A hit refreshes: block 0 used again, so block 2 goes next.
  p.retain(b[0]);
  p.release(b[0]);
  EXPECT_EQ(p.allocate(), b[2]);
  EXPECT_EQ(p.allocate(), b[0]);
  EXPECT_EQ(p.allocate(), -1);
  EXPECT_EQ(p.n_hashed(), 0);
  p.release(fresh);
}

TEST(BlockPool, ReferencedBlocksAreNeverEvicted) {
  BlockPool p(2, 2);
  const int32_t shared = p.allocate();
  ASSERT_TRUE(p.publish(shared, 5, 0, toks(1, 2)));
  p.retain(shared);  // two sequences share it
  const int32_t other = p.allocate();
  EXPECT_EQ(p.allocate(), -1);  // the shared block is not evictable
  p.release(shared);
  EXPECT_EQ(p.allocate(), -1);  // still one reference
  EXPECT_EQ(p.lookup(5, 0, toks(1, 2)), shared);
  p.release(shared);
  EXPECT_EQ(p.allocate(), shared);  // now cached, so evictable
  p.release(other);
}

}  // namespace
}  // namespace flashlm
