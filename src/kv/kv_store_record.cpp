#include "kv/kv_store_record.h"

#include <bit>
#include <cstring>
#include <string>

#include "util/xxhash64.h"

namespace flashlm {
namespace {

static_assert(std::endian::native == std::endian::little, "records are written little-endian");

constexpr char kMagic[8] = {'F', 'L', 'M', 'K', 'V', 'B', '0', '1'};

template <typename T>
void put(uint8_t* at, T v) {
  std::memcpy(at, &v, sizeof(T));
}
template <typename T>
T get(const uint8_t* at) {
  T v;
  std::memcpy(&v, at, sizeof(T));
  return v;
}

}  // namespace

std::vector<uint8_t> encode_kv_record(const KvRecordHeader& h, std::span<const int32_t> tokens,
                                      std::span<const uint8_t> payload, bool checksum) {
  std::vector<uint8_t> out(kv_record_size(tokens.size(), payload.size()), 0);
  uint8_t* p = out.data();
  std::memcpy(p, kMagic, 8);
  put<uint32_t>(p + 8, kKvRecordVersion);
  put<uint32_t>(p + 12, static_cast<uint32_t>(kKvRecordHeaderBytes));
  put<uint64_t>(p + 16, h.namespace_id);
  put<uint64_t>(p + 24, h.block_hash);
  put<uint64_t>(p + 32, h.parent_hash);
  put<uint32_t>(p + 40, static_cast<uint32_t>(tokens.size()));
  put<uint64_t>(p + 48, static_cast<uint64_t>(payload.size()));
  size_t at = kKvRecordHeaderBytes;
  if (!tokens.empty()) std::memcpy(p + at, tokens.data(), tokens.size_bytes());
  at += tokens.size_bytes();
  if (!payload.empty()) std::memcpy(p + at, payload.data(), payload.size());
  at += payload.size();
  if (checksum) put<uint64_t>(p + at, xxh64(p, at));
  return out;
}

uint64_t kv_record_checksum(std::span<const uint8_t> record) {
  return record.size() < kKvRecordTrailerBytes ? 0 : xxh64(record.data(), record.size() - kKvRecordTrailerBytes);
}

Result<KvRecordView> parse_kv_record(std::span<const uint8_t> bytes, bool verify_checksum) {
  const size_t size = bytes.size();
  if (size < kKvRecordHeaderBytes + kKvRecordTrailerBytes)
    return Status::error("record too short (" + std::to_string(size) + " bytes)");
  const uint8_t* p = bytes.data();
  if (std::memcmp(p, kMagic, 8) != 0) return Status::error("bad magic");
  const uint32_t version = get<uint32_t>(p + 8);
  if (version != kKvRecordVersion) return Status::error("unsupported format version " + std::to_string(version));
  if (get<uint32_t>(p + 12) != kKvRecordHeaderBytes) return Status::error("bad header size");
  if (get<uint32_t>(p + 44) != 0 || get<uint64_t>(p + 56) != 0) return Status::error("reserved fields not zero");
  KvRecordView v;
  v.header.namespace_id = get<uint64_t>(p + 16);
  v.header.block_hash = get<uint64_t>(p + 24);
  v.header.parent_hash = get<uint64_t>(p + 32);
  v.header.n_tokens = get<uint32_t>(p + 40);
  v.header.payload_bytes = get<uint64_t>(p + 48);
  if (v.header.n_tokens > kKvRecordMaxTokens) return Status::error("token count out of range");
  if (v.header.payload_bytes > kKvRecordMaxBytes) return Status::error("payload size out of range");
  // Both bounded above, so this sum cannot overflow.
  const uint64_t want = kKvRecordHeaderBytes + uint64_t{4} * v.header.n_tokens + v.header.payload_bytes +
                        kKvRecordTrailerBytes;
  if (want != size)
    return Status::error("size " + std::to_string(size) + " does not match header (" + std::to_string(want) + ")");
  const size_t body = size - kKvRecordTrailerBytes;
  if (verify_checksum && xxh64(p, body) != get<uint64_t>(p + body)) return Status::error("checksum mismatch");
  v.token_bytes = p + kKvRecordHeaderBytes;
  v.payload = bytes.subspan(kKvRecordHeaderBytes + size_t{4} * v.header.n_tokens,
                            static_cast<size_t>(v.header.payload_bytes));
  return v;
}

std::vector<int32_t> kv_record_tokens(const KvRecordView& v) {
  std::vector<int32_t> t(v.header.n_tokens);
  if (!t.empty()) std::memcpy(t.data(), v.token_bytes, t.size() * sizeof(int32_t));
  return t;
}

}  // namespace flashlm
