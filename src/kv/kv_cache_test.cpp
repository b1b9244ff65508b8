// KvCache: layer groups, prefix reuse (whole blocks before the last token, verified by
// tokens), sliding-window release, eviction of cached blocks while others are shared,
// truncation, pins, and the persistence hooks.
#include "kv/kv_cache.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "kv/kv_budget.h"

namespace flashlm {
namespace {

constexpr int kBs = 4;
constexpr int kWindow = 8;

// Layers 0 and 3 global, 1 and 2 with a window of 8: two groups.
KvConfig config(int64_t n_global = 16, int64_t n_local = 8, int max_seqs = 3) {
  KvConfig c;
  c.n_layer = 4;
  c.kv_dim = 2;
  c.block_size = kBs;
  c.n_blocks = n_global;
  c.n_blocks_local = n_local;
  c.max_seqs = max_seqs;
  c.layer_window = {0, kWindow, kWindow, 0};
  c.model_id = 42;
  return c;
}

std::vector<int32_t> stream(int n, int32_t salt = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), 100 + salt);
  return t;
}

// The tests' caches hold f32 rows (KvConfig's default type): a slot's first value.
float* fk(KvCache& kv, int layer, int seq, int64_t pos) { return reinterpret_cast<float*>(kv.k_slot(layer, seq, pos)); }

float* fv(KvCache& kv, int layer, int seq, int64_t pos) { return reinterpret_cast<float*>(kv.v_slot(layer, seq, pos)); }

float value(int layer, int64_t pos, int salt) { return static_cast<float>(layer * 1000 + pos * 10 + salt); }

// Runs a sequence over tokens[from, to) in steps as the scheduler does: prepare, write
// K/V for every layer (values tagged by `salt`), publish.
void fill(KvCache& kv, int seq, const std::vector<int32_t>& tokens, int64_t from, int64_t to, int salt, int step = kBs) {
  for (int64_t p = from; p < to; p += step) {
    const int64_t e = std::min<int64_t>(to, p + step);
    ASSERT_TRUE(kv.seq_prepare(seq, p, e).is_ok());
    for (int64_t q = p; q < e; ++q) {
      for (int l = 0; l < kv.config().n_layer; ++l) {
        fk(kv, l, seq, q)[0] = value(l, q, salt);
        fv(kv, l, seq, q)[1] = -value(l, q, salt);
      }
    }
    kv.seq_publish(seq, tokens, e);
  }
}

TEST(KvCache, GroupsByWindow) {
  KvCache kv(config());
  ASSERT_EQ(kv.n_groups(), 2);
  EXPECT_EQ(kv.group_of(0), 0);
  EXPECT_EQ(kv.group_of(1), 1);
  EXPECT_EQ(kv.group_of(3), 0);
  EXPECT_EQ(kv.group_window(1), kWindow);
  EXPECT_EQ(kv.group_stats(0).n_blocks, 16);
  EXPECT_EQ(kv.group_stats(1).n_blocks, 8);
  EXPECT_EQ(static_cast<int64_t>(kv.bytes()), KvCache::bytes_for(config()));
  EXPECT_EQ(KvCache::bytes_for(config()), (2 * 16 + 2 * 8) * 2 * kBs * 2 * 4);
}

TEST(KvCache, ReusesWholeBlocksBeforeTheLastToken) {
  KvCache kv(config());
  const auto a_tok = stream(10);
  const int a = kv.seq_new();
  fill(kv, a, a_tok, 0, 10, 1);
  // Same 10 tokens again: blocks 0 and 1 are full, but the last token (9) must run, so
  // only [0, 8) is reused; 8 tokens exactly: only [0, 4).
  EXPECT_EQ(kv.match(a_tok), 8);
  EXPECT_EQ(kv.match(std::span(a_tok).first(8)), 4);
  EXPECT_EQ(kv.match(std::span(a_tok).first(4)), 0);
  auto other = a_tok;
  other[5] = 7;  // diverges inside block 1
  EXPECT_EQ(kv.match(other), 4);
  other[0] = 7;
  EXPECT_EQ(kv.match(other), 0);

  auto b_tok = stream(8);
  b_tok.push_back(1);
  b_tok.push_back(2);
  b_tok.push_back(3);
  const int b = kv.seq_new();
  ASSERT_EQ(kv.seq_reuse(b, b_tok), 8);
  for (int l = 0; l < 4; ++l) {
    for (int64_t p = 0; p < 8; ++p) {
      EXPECT_EQ(fk(kv, l, b, p), fk(kv, l, a, p)) << "shared, not copied";
      EXPECT_EQ(fk(kv, l, b, p)[0], value(l, p, 1));
    }
  }
  EXPECT_EQ(kv.pool(0).refcount(kv.group_table(0, a)[0]), 2);
  // b continues from 8 into a block of its own; a's block 2 is untouched.
  fill(kv, b, b_tok, 8, 11, 2);
  EXPECT_NE(fk(kv, 0, b, 8), fk(kv, 0, a, 8));
  EXPECT_EQ(fk(kv, 0, a, 8)[0], value(0, 8, 1));
  kv.seq_free(a);
  kv.seq_free(b);
  EXPECT_EQ(kv.used_blocks(), 0);
  EXPECT_EQ(kv.group_stats(0).cached, 2);  // blocks 0 and 1; the partial ones are free
}

TEST(KvCache, OtherModelOrLayoutNeverMatches) {
  KvCache kv(config());
  const auto t = stream(12);
  const int a = kv.seq_new();
  fill(kv, a, t, 0, 12, 1);
  KvConfig c = config();
  c.model_id = 43;
  KvCache other(c);
  EXPECT_NE(kv.block_hashes(0, t), other.block_hashes(0, t));
  EXPECT_NE(kv.block_hashes(0, t), kv.block_hashes(1, t));  // groups hold different layers
}

TEST(KvCache, SlidingWindowReleasesBlocksOutsideEveryWindow) {
  KvCache kv(config(/*n_global=*/32, /*n_local=*/8));
  const auto t = stream(60);
  const int a = kv.seq_new();
  fill(kv, a, t, 0, 60, 1);
  // Queries from 60 on read keys >= 53: local blocks 13 and up; everything before is
  // released (to the cache, as published blocks).
  const auto& local = kv.group_table(1, a);
  const auto& global = kv.group_table(0, a);
  ASSERT_EQ(local.size(), 15u);
  for (size_t i = 0; i < local.size(); ++i) EXPECT_EQ(local[i] < 0, i < 12) << i;  // prepared at 56: keys >= 49
  for (int32_t b : global) EXPECT_GE(b, 0);
  EXPECT_LE(kv.group_stats(1).used, 3);
  EXPECT_EQ(kv.group_stats(0).used, 15);
  // The pool of 8 local blocks served a 60-token sequence.
  EXPECT_TRUE(kv.seq_covers(a, 59, 60));
  EXPECT_TRUE(kv.seq_covers(a, 56, 60));   // reads from 49: block 12 on
  EXPECT_FALSE(kv.seq_covers(a, 40, 41));  // reads from 33: released
}

TEST(KvCache, PrefixLongerThanTheWindowNeedsOnlyTheLastWindowLocally) {
  KvCache kv(config(32, 8));
  const auto t = stream(24);
  const int a = kv.seq_new();
  fill(kv, a, t, 0, 24, 1);
  kv.seq_free(a);
  auto t2 = t;
  t2.push_back(5);
  // The query at 24 reads keys >= 17: local blocks 4 and 5, both cached.
  EXPECT_EQ(kv.match(t2), 24);

  // Evict local blocks by using the local pool elsewhere. LRU order of a's local blocks:
  // 0, 1, 2 (released while it ran), then 5, 4, 3 (freed back to front); 2 were free.
  const int c = kv.seq_new();
  const auto u = stream(24, 5000);
  ASSERT_TRUE(kv.seq_prepare(c, 0, 24).is_ok());  // 6 local blocks: 2 free + evicts 0, 1, 2, 5
  EXPECT_EQ(kv.group_stats(1).cached, 2);
  // P = 24 needs local block 5 (evicted); P = 20 needs blocks 3 and 4 (cached).
  EXPECT_EQ(kv.match(t2), 20);
  const int b = kv.seq_new();
  ASSERT_EQ(kv.seq_reuse(b, t2), 20);
  EXPECT_EQ(kv.group_table(1, b)[2], -1);  // never read from 20 on
  EXPECT_GE(kv.group_table(1, b)[3], 0);
  for (int l = 0; l < 4; ++l) EXPECT_EQ(fk(kv, l, b, 19)[0], value(l, 19, 1));
  EXPECT_EQ(fk(kv, 0, b, 0)[0], value(0, 0, 1));  // global: the whole prefix
  (void)u;
}

TEST(KvCache, EvictionUnderPressureKeepsSharedBlocks) {
  KvCache kv(config(/*n_global=*/6, /*n_local=*/6));
  const auto t = stream(13);
  const int a = kv.seq_new();
  fill(kv, a, t, 0, 13, 1);  // 4 blocks: 3 full (published) + 1 partial
  const int b = kv.seq_new();
  ASSERT_EQ(kv.seq_reuse(b, t), 12);  // shares 3 blocks
  kv.seq_free(a);                     // a's partial block is freed; shared ones stay with b
  EXPECT_EQ(kv.group_stats(0).used, 3);
  // A third sequence wants more than is free: the shared blocks must not be taken.
  const int c = kv.seq_new();
  const Status st = kv.seq_prepare(c, 0, 16);  // 4 blocks, 3 available
  EXPECT_FALSE(st.is_ok());
  EXPECT_TRUE(kv.group_table(0, c).empty()) << "prepare, then commit";
  ASSERT_TRUE(kv.seq_prepare(c, 0, 12).is_ok());
  for (int l = 0; l < 4; ++l) {
    for (int64_t p = 0; p < 12; ++p) {
      if (kv.block_table(l, b)[static_cast<size_t>(p / kBs)] < 0) continue;  // outside the window
      ASSERT_EQ(fk(kv, l, b, p)[0], value(l, p, 1)) << l << " " << p;
    }
  }
  // b ends: its blocks become cached, and c's growth evicts them (oldest first).
  kv.seq_free(b);
  EXPECT_EQ(kv.group_stats(0).cached, 3);
  ASSERT_TRUE(kv.seq_prepare(c, 12, 20).is_ok());
  EXPECT_EQ(kv.group_stats(0).cached, 1);
  EXPECT_EQ(kv.match(t), 0) << "block 0 was evicted, so nothing after it is usable";
}

TEST(KvCache, TruncateNeverWritesIntoSharedBlocksOrLostWindows) {
  const auto t = stream(30);
  {
    KvConfig c = config(32, 16);
    c.layer_window.assign(4, 0);  // all global
    KvCache kv(c);
    const int a = kv.seq_new();
    fill(kv, a, t, 0, 30, 1, 2);
    EXPECT_EQ(kv.seq_truncate(a, 29), 29);  // block 7 is its own (partial, unpublished)
    EXPECT_EQ(kv.seq_truncate(a, 26), 24);  // block 6 is published: cut to its start
    EXPECT_EQ(kv.seq_truncate(a, 24), 24);
    EXPECT_EQ(kv.group_table(0, a).size(), 6u);
  }
  KvCache kv(config(32, 16));
  const int a = kv.seq_new();
  fill(kv, a, t, 0, 30, 1, 2);  // last prepared at 28: local blocks before (28 - 7) / 4 = 5 released
  EXPECT_EQ(kv.seq_truncate(a, 29), 29);  // the query at 29 reads from 22 (block 5)
  // Cut to 24, whose query reads from 17 (block 4, released): nothing is usable.
  EXPECT_EQ(kv.seq_truncate(a, 26), 0);
  EXPECT_EQ(kv.used_blocks(), 0);
}

TEST(KvCache, PinnedPrefixesSurviveEviction) {
  KvCache kv(config(8, 8));
  const auto t = stream(16);
  const int a = kv.seq_new();
  fill(kv, a, t, 0, 16, 1);
  kv.seq_free(a);
  EXPECT_EQ(kv.pin(t), 16);
  EXPECT_EQ(kv.pinned_blocks(), 4 + 3);  // global: all 4; local: what a hit at 12 reads, blocks 1 to 3
  const int c = kv.seq_new();
  EXPECT_FALSE(kv.seq_prepare(c, 0, 20).is_ok());  // only 4 global blocks not pinned
  ASSERT_TRUE(kv.seq_prepare(c, 0, 16).is_ok());
  auto t2 = t;
  t2.push_back(1);
  EXPECT_EQ(kv.match(t2), 16);
  kv.seq_free(c);
  EXPECT_TRUE(kv.unpin(t));
  EXPECT_FALSE(kv.unpin(t));
  EXPECT_EQ(kv.pinned_blocks(), 0);
  EXPECT_EQ(kv.used_blocks(), 0);
}

TEST(KvCache, ExportImportRoundTrip) {
  KvCache kv(config());
  const auto t = stream(9);
  const int a = kv.seq_new();
  fill(kv, a, t, 0, 9, 3);
  KvCache fresh(config());
  for (int g = 0; g < kv.n_groups(); ++g) {
    const auto hashes = kv.block_hashes(g, t);
    ASSERT_EQ(hashes.size(), 2u);
    for (size_t i = 0; i < hashes.size(); ++i) {
      const std::vector<uint8_t> bytes = kv.export_block(g, kv.group_table(g, a)[i]);
      const std::span<const int32_t> bt(t.data() + i * kBs, kBs);
      ASSERT_TRUE(fresh.import_block(g, hashes[i], i ? hashes[i - 1] : 0, bt, bytes).is_ok());
      EXPECT_FALSE(fresh.import_block(g, hashes[i], 0, bt, std::span(bytes).first(4)).is_ok());
    }
  }
  EXPECT_EQ(fresh.match(t), 8);
  const int b = fresh.seq_new();
  ASSERT_EQ(fresh.seq_reuse(b, t), 8);
  for (int l = 0; l < 4; ++l) {
    for (int64_t p = 0; p < 8; ++p) {
      EXPECT_EQ(fk(fresh, l, b, p)[0], value(l, p, 3));
      EXPECT_EQ(fv(fresh, l, b, p)[1], -value(l, p, 3));
    }
  }
}

TEST(KvBudget, Parses) {
  const int64_t ram = int64_t{16} << 30;
  EXPECT_EQ(parse_kv_mem("1000", ram).value(), 1000);
  EXPECT_EQ(parse_kv_mem("2G", ram).value(), int64_t{2} << 30);
  EXPECT_EQ(parse_kv_mem("512MiB", ram).value(), int64_t{512} << 20);
  EXPECT_EQ(parse_kv_mem("1.5k", ram).value(), 1536);
  EXPECT_EQ(parse_kv_mem("25%", ram).value(), int64_t{4} << 30);
  for (const char* bad : {"", "G", "-1", "0", "12X", "150%", "0%", "1e99", "nan", "1.2.3"}) {
    EXPECT_FALSE(parse_kv_mem(bad, ram).is_ok()) << bad;
  }
  EXPECT_FALSE(parse_kv_mem("10%", 0).is_ok());
  EXPECT_GT(physical_memory_bytes(), 0);
}

}  // namespace
}  // namespace flashlm
