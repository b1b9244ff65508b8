// Record format: round trip, and every single-bit flip, every truncation and any
// appended byte is rejected (exhaustively over a small record), never read past.
#include "kv/kv_store_record.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "util/xxhash64.h"

namespace flashlm {
namespace {

std::vector<uint8_t> sample_record(KvRecordHeader* h_out = nullptr) {
  KvRecordHeader h;
  h.namespace_id = 0x1122334455667788ull;
  h.block_hash = 0xdeadbeefcafef00dull;
  h.parent_hash = 42;
  std::vector<int32_t> tokens = {1, -2, 300000, 7};
  std::vector<uint8_t> payload(37);
  std::iota(payload.begin(), payload.end(), uint8_t{9});
  if (h_out) *h_out = h;
  return encode_kv_record(h, tokens, payload);
}

TEST(KvRecord, RoundTrip) {
  KvRecordHeader h;
  const std::vector<uint8_t> b = sample_record(&h);
  ASSERT_EQ(b.size(), kv_record_size(4, 37));
  Result<KvRecordView> v = parse_kv_record(b);
  ASSERT_TRUE(v) << v.message();
  EXPECT_EQ(v->header.namespace_id, h.namespace_id);
  EXPECT_EQ(v->header.block_hash, h.block_hash);
  EXPECT_EQ(v->header.parent_hash, 42u);
  EXPECT_EQ(kv_record_tokens(*v), (std::vector<int32_t>{1, -2, 300000, 7}));
  ASSERT_EQ(v->payload.size(), 37u);
  for (size_t i = 0; i < 37; ++i) EXPECT_EQ(v->payload[i], static_cast<uint8_t>(9 + i));
  // The layout is the documented one, checked field by field (not through the parser).
  EXPECT_EQ(std::memcmp(b.data(), "FLMKVB01", 8), 0);
  uint64_t sum;
  std::memcpy(&sum, b.data() + b.size() - 8, 8);
  EXPECT_EQ(sum, xxh64(b.data(), b.size() - 8));
  uint32_t n;
  std::memcpy(&n, b.data() + 40, 4);
  EXPECT_EQ(n, 4u);
}

TEST(KvRecord, EmptyTokensAndPayload) {
  const std::vector<uint8_t> b = encode_kv_record(KvRecordHeader{}, {}, {});
  Result<KvRecordView> v = parse_kv_record(b);
  ASSERT_TRUE(v) << v.message();
  EXPECT_TRUE(v->payload.empty());
  EXPECT_TRUE(kv_record_tokens(*v).empty());
}

TEST(KvRecord, UnsealedEncodingPlusChecksumEqualsSealed) {
  KvRecordHeader h;
  h.block_hash = 5;
  const std::vector<int32_t> tokens = {3, 4};
  const std::vector<uint8_t> payload = {1, 2, 3};
  std::vector<uint8_t> unsealed = encode_kv_record(h, tokens, payload, false);
  EXPECT_FALSE(parse_kv_record(unsealed));
  EXPECT_TRUE(parse_kv_record(unsealed, /*verify_checksum=*/false));
  const uint64_t sum = kv_record_checksum(unsealed);
  std::memcpy(unsealed.data() + unsealed.size() - 8, &sum, 8);
  EXPECT_EQ(unsealed, encode_kv_record(h, tokens, payload));
}

TEST(KvRecord, EveryBitFlipIsRejected) {
  const std::vector<uint8_t> good = sample_record();
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> b = good;
      b[i] ^= static_cast<uint8_t>(1u << bit);
      ASSERT_FALSE(parse_kv_record(b)) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(KvRecord, EveryTruncationAndAppendIsRejected) {
  const std::vector<uint8_t> good = sample_record();
  for (size_t n = 0; n < good.size(); ++n) {
    // An exactly sized heap copy, so ASan sees any read past the end.
    std::vector<uint8_t> b(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    ASSERT_FALSE(parse_kv_record(b)) << "length " << n;
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_FALSE(parse_kv_record(longer));
}

TEST(KvRecord, HugeCountsRejectedBeforeUse) {
  std::vector<uint8_t> b = sample_record();
  const uint32_t many = 0xffffffffu;
  std::memcpy(b.data() + 40, &many, 4);
  Result<KvRecordView> v = parse_kv_record(b);
  ASSERT_FALSE(v);
  EXPECT_NE(v.message().find("token count"), std::string::npos) << v.message();
  b = sample_record();
  const uint64_t big = ~uint64_t{0};
  std::memcpy(b.data() + 48, &big, 8);
  v = parse_kv_record(b);
  ASSERT_FALSE(v);
  EXPECT_NE(v.message().find("payload size"), std::string::npos) << v.message();
}

}  // namespace
}  // namespace flashlm
