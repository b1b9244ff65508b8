// KvCache storage by element type: names, bytes per slot and in all, and slots that
// are row_bytes() apart, never overlapping, in the layer/block layout attention reads.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "kv/kv_cache.h"

namespace flashlm {
namespace {

TEST(KvStorage, TypeNames) {
  for (const char* name : {"f32", "f16", "q8_0"}) {
    Result<DType> t = kv_type_from_name(name);
    ASSERT_TRUE(t.is_ok()) << name;
    EXPECT_STREQ(kv_type_name(*t), name);
  }
  for (const char* bad : {"", "F16", "q4_0", "q8", "bf16"}) {
    Result<DType> t = kv_type_from_name(bad);
    ASSERT_FALSE(t.is_ok()) << bad;
    EXPECT_NE(t.message().find("expected f32, f16 or q8_0"), std::string::npos) << t.message();
  }
  EXPECT_STREQ(kv_type_name(DType::Q4_K), "?");
}

TEST(KvStorage, RowBytes) {
  EXPECT_EQ(kv_row_bytes(DType::F32, 192), 768u);
  EXPECT_EQ(kv_row_bytes(DType::F16, 192), 384u);
  EXPECT_EQ(kv_row_bytes(DType::Q8_0, 192), 6u * 34u);  // 6 blocks of 32: half scale + 32 bytes
  EXPECT_EQ(kv_row_bytes(DType::Q8_0, 200), 0u);        // not whole blocks
  EXPECT_EQ(kv_row_bytes(DType::Q4_K, 256), 0u);        // not a KV type
}

TEST(KvStorage, SlotsAreDisjointRowsOfEachType) {
  for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
    SCOPED_TRACE(kv_type_name(t));
    KvConfig kc;
    kc.n_layer = 3;
    kc.kv_dim = 64;
    kc.block_size = 4;
    kc.n_blocks = 5;
    kc.max_seqs = 2;
    kc.type = t;
    KvCache kv(kc);
    const size_t rb = kv_row_bytes(t, 64);
    ASSERT_EQ(kv.row_bytes(), rb);
    EXPECT_EQ(kv.bytes(), 2u * 3u * 5u * 4u * rb);
    const int a = kv.seq_new(), b = kv.seq_new();
    ASSERT_TRUE(kv.seq_prepare(a, 0, 9).is_ok());  // 3 blocks
    ASSERT_TRUE(kv.seq_prepare(b, 0, 8).is_ok());  // 2 blocks: the pool is full
    // Fill every slot of every layer with its own byte pattern, then read all back
    // through the layer base and the block table, as attention does.
    std::set<const uint8_t*> seen;
    for (int layer = 0; layer < 3; ++layer) {
      for (int seq : {a, b}) {
        for (int64_t pos = 0; pos < static_cast<int64_t>(kv.block_table(layer, seq).size()) * 4; ++pos) {
          uint8_t* k = kv.k_slot(layer, seq, pos);
          uint8_t* v = kv.v_slot(layer, seq, pos);
          ASSERT_TRUE(seen.insert(k).second && seen.insert(v).second) << "slot reused";
          std::memset(k, static_cast<int>(layer * 50 + seq * 20 + pos), rb);
          std::memset(v, static_cast<int>(200 - layer * 50 - seq * 20 - pos), rb);
        }
      }
    }
    for (int layer = 0; layer < 3; ++layer) {
      for (int seq : {a, b}) {
        const auto& table = kv.block_table(layer, seq);
        for (int64_t pos = 0; pos < static_cast<int64_t>(kv.block_table(layer, seq).size()) * 4; ++pos) {
          const size_t at = (static_cast<size_t>(table[static_cast<size_t>(pos / 4)]) * 4 + static_cast<size_t>(pos % 4)) * rb;
          const uint8_t* k = kv.k_layer(layer) + at;
          const uint8_t* v = kv.v_layer(layer) + at;
          ASSERT_EQ(k, kv.k_slot(layer, seq, pos));
          for (size_t i = 0; i < rb; ++i) {
            ASSERT_EQ(k[i], static_cast<uint8_t>(layer * 50 + seq * 20 + pos));
            ASSERT_EQ(v[i], static_cast<uint8_t>(200 - layer * 50 - seq * 20 - pos));
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace flashlm
