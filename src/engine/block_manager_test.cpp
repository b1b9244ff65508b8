// BlockManager alone, on a small KvCache with no model: admission takes the cached prefix
// (and counts the hit) or changes nothing, growth takes all of a step's blocks or none, published blocks are
// written behind to the store and read through by a fresh cache (a restart), pins hold
// blocks against eviction.
#include "engine/block_manager.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>
#include <string>
#include <unistd.h>
#include <vector>

namespace flashlm {
namespace {

namespace fs = std::filesystem;

constexpr int kBs = 4;

// Layers 0 and 2 global, layer 1 with a window of 8: two groups.
KvConfig config(int64_t n_global = 8, int max_seqs = 2) {
  KvConfig c;
  c.n_layer = 3;
  c.kv_dim = 2;
  c.block_size = kBs;
  c.n_blocks = n_global;
  c.n_blocks_local = 10;
  c.max_seqs = max_seqs;
  c.layer_window = {0, 8, 0};
  c.model_id = 7;
  return c;
}

std::vector<int32_t> stream(int n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), 50);
  return t;
}

float value(int layer, int64_t pos) { return static_cast<float>(layer * 1000 + pos); }

// Runs tokens[from, to) of seq one block per step, as the scheduler does: grow, write
// K/V of every layer, publish.
void run(BlockManager& bm, KvCache& kv, int seq, const std::vector<int32_t>& tokens, int64_t from, int64_t to) {
  for (int64_t p = from; p < to; p += kBs) {
    const int64_t e = std::min<int64_t>(to, p + kBs);
    ASSERT_TRUE(bm.grow(seq, p, e).is_ok());
    for (int64_t q = p; q < e; ++q) {
      for (int l = 0; l < kv.config().n_layer; ++l) {
        reinterpret_cast<float*>(kv.k_slot(l, seq, q))[0] = value(l, q);
        reinterpret_cast<float*>(kv.v_slot(l, seq, q))[1] = -value(l, q);
      }
    }
    bm.publish(seq, tokens, p, e);
  }
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("flashlm-blockmgr-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

TEST(BlockManager, AllocateTakesTheCachedPrefix) {
  KvCache kv(config());
  BlockManager bm(kv);
  const std::vector<int32_t> t = stream(14);
  auto a = bm.allocate(t, 0);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->hit, 0);
  run(bm, kv, a->seq, t, 0, 14);
  bm.release(a->seq);
  EXPECT_EQ(bm.used_blocks(), 0);
  EXPECT_GT(bm.stats().blocks_cached, 0);

  // Same stream: whole blocks before the last token come from the cache, with their KV.
  auto b = bm.allocate(t, 0);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->hit, 12);
  EXPECT_EQ(reinterpret_cast<const float*>(kv.k_slot(2, b->seq, 11))[0], value(2, 11));
  EXPECT_EQ(reinterpret_cast<const float*>(kv.k_slot(1, b->seq, 11))[0], value(1, 11));
  EXPECT_EQ(bm.stats().hit_tokens, 12);
  EXPECT_EQ(bm.stats().miss_tokens, 14 + 2);

  // A preempted sequence coming back counts as a recompute, not as a prompt.
  bm.release(b->seq);
  auto c = bm.allocate(t, 0, /*readmission=*/true);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->hit, 12);
  EXPECT_EQ(bm.stats().recompute_hit_tokens, 12);
  EXPECT_EQ(bm.stats().hit_tokens, 12);
}

TEST(BlockManager, AllocateThatDoesNotFitChangesNothing) {
  KvCache kv(config(/*n_global=*/8));
  BlockManager bm(kv);
  const std::vector<int32_t> t = stream(20);  // 5 global blocks
  const int64_t free_before = bm.free_blocks();
  EXPECT_FALSE(bm.allocate(t, /*spare=*/4).has_value());  // 5 + 4 > 8
  EXPECT_EQ(bm.free_blocks(), free_before);
  EXPECT_EQ(bm.used_blocks(), 0);
  // Both slots are still free.
  auto a = bm.allocate(t, 3);
  auto b = bm.allocate(stream(3), 0);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_NE(a->seq, b->seq);
  EXPECT_FALSE(bm.allocate(stream(3), 0).has_value());  // no third slot
}

TEST(BlockManager, GrowTakesAllOrNone) {
  KvCache kv(config(/*n_global=*/4));
  BlockManager bm(kv);
  const std::vector<int32_t> t = stream(16);
  auto a = bm.allocate(t, 0);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(bm.grow(a->seq, 0, 12).is_ok());
  EXPECT_EQ(kv.group_stats(0).used, 3);  // group 0: the global layers
  EXPECT_FALSE(bm.grow(a->seq, 12, 20).is_ok());  // two more global blocks, one left
  EXPECT_EQ(kv.group_stats(0).used, 3);
  EXPECT_TRUE(bm.grow(a->seq, 12, 16).is_ok());
  EXPECT_EQ(kv.group_stats(0).used, 4);
}

TEST(BlockManager, WriteBehindThenReadThroughAfterARestart) {
  TempDir dir;
  const std::vector<int32_t> t = stream(14);
  {
    auto store = KvStore::open(dir.path.string(), 99, 1 << 20);
    ASSERT_TRUE(store.is_ok()) << store.message();
    KvCache kv(config());
    BlockManager bm(kv, std::move(store.value()));
    auto a = bm.allocate(t, 0);
    ASSERT_TRUE(a.has_value());
    run(bm, kv, a->seq, t, 0, 14);
    bm.release(a->seq);
    bm.flush();
    EXPECT_GT(bm.store_stats().blocks, 0);
    EXPECT_TRUE(bm.stats().store_enabled);
  }
  auto store = KvStore::open(dir.path.string(), 99, 1 << 20);
  ASSERT_TRUE(store.is_ok()) << store.message();
  KvCache kv(config());  // a fresh cache: nothing in memory
  BlockManager bm(kv, std::move(store.value()));
  auto cold = bm.allocate(t, 0);
  ASSERT_TRUE(cold.has_value());
  EXPECT_EQ(cold->hit, 0);  // without read-through, memory has nothing
  bm.release(cold->seq);
  bm.read_through(t);
  EXPECT_GT(bm.stats().store_blocks_loaded, 0);
  EXPECT_EQ(bm.stats().store_blocks_rejected, 0);
  auto b = bm.allocate(t, 0);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->hit, 12);
  EXPECT_EQ(reinterpret_cast<const float*>(kv.k_slot(0, b->seq, 5))[0], value(0, 5));
  EXPECT_EQ(reinterpret_cast<const float*>(kv.v_slot(1, b->seq, 11))[1], -value(1, 11));
}

TEST(BlockManager, ReadThroughWithoutAStoreDoesNothing) {
  KvCache kv(config());
  BlockManager bm(kv);
  bm.read_through(stream(14));
  const CacheStats cs = bm.stats();
  EXPECT_FALSE(cs.store_enabled);
  EXPECT_EQ(cs.store_blocks_loaded, 0);
  EXPECT_EQ(cs.blocks_cached, 0);
}

TEST(BlockManager, PinnedBlocksSurviveEviction) {
  KvCache kv(config(/*n_global=*/8));
  BlockManager bm(kv);
  const std::vector<int32_t> t = stream(9);  // two full blocks published, the last token in a third
  auto a = bm.allocate(t, 0);
  ASSERT_TRUE(a.has_value());
  run(bm, kv, a->seq, t, 0, 9);
  bm.release(a->seq);
  bm.pin(t);
  EXPECT_GT(bm.stats().blocks_pinned, 0);
  // Another stream takes every unpinned block: the pinned ones are not evicted.
  std::vector<int32_t> other(24);
  std::iota(other.begin(), other.end(), 900);
  auto b = bm.allocate(other, 0);
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(bm.grow(b->seq, 0, 32).is_ok());
  ASSERT_TRUE(bm.grow(b->seq, 0, 24).is_ok());
  bm.release(b->seq);
  auto c = bm.allocate(t, 0);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->hit, 8);
  bm.release(c->seq);
  bm.unpin(t);
  EXPECT_EQ(bm.stats().blocks_pinned, 0);
}

}  // namespace
}  // namespace flashlm
