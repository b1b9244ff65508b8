// On-disk record of one KV block in the persistent store (kv_store.h): one file per
// block. All integers little-endian.
//
//   offset  size  field
//   0       8     magic "FLMKVB01"
//   8       4     format version (kKvRecordVersion)
//   12      4     header size (64)
//   16      8     namespace id (model fingerprint + KV layout)
//   24      8     block hash
//   32      8     parent block hash
//   40      4     token count n
//   44      4     reserved, 0
//   48      8     payload size p
//   56      8     reserved, 0
//   64      4n    token ids (int32)
//   64+4n   p     payload (the block's K/V bytes, opaque here)
//   end-8   8     XXH64 (seed 0) of every byte before it
//
// The file size must be exactly 64 + 4n + p + 8, so a truncated or padded file fails
// before its checksum is even computed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "util/status.h"

namespace flashlm {

inline constexpr uint32_t kKvRecordVersion = 1;
inline constexpr size_t kKvRecordHeaderBytes = 64;
inline constexpr size_t kKvRecordTrailerBytes = 8;
// Bounds checked before anything is sized from the header.
inline constexpr uint32_t kKvRecordMaxTokens = 1u << 20;
inline constexpr uint64_t kKvRecordMaxBytes = uint64_t{1} << 32;

struct KvRecordHeader {
  uint64_t namespace_id = 0;
  uint64_t block_hash = 0;
  uint64_t parent_hash = 0;
  uint32_t n_tokens = 0;
  uint64_t payload_bytes = 0;
};

// A parsed, verified record: views into the buffer it was parsed from.
struct KvRecordView {
  KvRecordHeader header;
  const uint8_t* token_bytes = nullptr;  // n_tokens * 4 bytes, maybe unaligned
  std::span<const uint8_t> payload;
};

inline size_t kv_record_size(size_t n_tokens, size_t payload_bytes) {
  return kKvRecordHeaderBytes + 4 * n_tokens + payload_bytes + kKvRecordTrailerBytes;
}

// The whole file: header, tokens, payload and checksum. With checksum = false the
// trailer is left zero, for a writer that hashes elsewhere (kv_record_checksum).
std::vector<uint8_t> encode_kv_record(const KvRecordHeader& h, std::span<const int32_t> tokens,
                                      std::span<const uint8_t> payload, bool checksum = true);
// The trailer value for an encoded record: XXH64 of all but its last 8 bytes.
uint64_t kv_record_checksum(std::span<const uint8_t> record);

// Checks magic, version, header size, reserved fields, counts against the buffer size
// and (unless told not to, for bytes we encoded ourselves) the checksum. Never reads
// outside `bytes`; any failure is a Status naming it.
Result<KvRecordView> parse_kv_record(std::span<const uint8_t> bytes, bool verify_checksum = true);

// Token ids of a parsed record (copied out: the bytes may be unaligned).
std::vector<int32_t> kv_record_tokens(const KvRecordView& v);

}  // namespace flashlm
