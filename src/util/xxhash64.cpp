#include "util/xxhash64.h"

#include <bit>
#include <cstring>

namespace flashlm {
namespace {

static_assert(std::endian::native == std::endian::little, "XXH64 reads little-endian lanes");

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull;
constexpr uint64_t kP2 = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t kP3 = 0x165667B19E3779F9ull;
constexpr uint64_t kP4 = 0x85EBCA77C2B2AE63ull;
constexpr uint64_t kP5 = 0x27D4EB2F165667C5ull;

uint64_t read64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t read32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

uint64_t round_acc(uint64_t acc, uint64_t lane) {
  acc += lane * kP2;
  acc = std::rotl(acc, 31);
  return acc * kP1;
}

uint64_t merge_acc(uint64_t h, uint64_t acc) {
  h ^= round_acc(0, acc);
  return h * kP1 + kP4;
}

// Consumes whole 32-byte stripes; returns the bytes used.
size_t consume_stripes(uint64_t acc[4], const uint8_t* p, size_t n) {
  size_t used = 0;
  for (; used + 32 <= n; used += 32) {
    acc[0] = round_acc(acc[0], read64(p + used));
    acc[1] = round_acc(acc[1], read64(p + used + 8));
    acc[2] = round_acc(acc[2], read64(p + used + 16));
    acc[3] = round_acc(acc[3], read64(p + used + 24));
  }
  return used;
}

// The tail (< 32 bytes) and the final avalanche.
uint64_t finish(uint64_t h, const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    h ^= round_acc(0, read64(p + i));
    h = std::rotl(h, 27) * kP1 + kP4;
  }
  if (i + 4 <= n) {
    h ^= static_cast<uint64_t>(read32(p + i)) * kP1;
    h = std::rotl(h, 23) * kP2 + kP3;
    i += 4;
  }
  for (; i < n; ++i) {
    h ^= p[i] * kP5;
    h = std::rotl(h, 11) * kP1;
  }
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

uint64_t converge(const uint64_t acc[4]) {
  uint64_t h = std::rotl(acc[0], 1) + std::rotl(acc[1], 7) + std::rotl(acc[2], 12) + std::rotl(acc[3], 18);
  for (int k = 0; k < 4; ++k) h = merge_acc(h, acc[k]);
  return h;
}

void init_acc(uint64_t acc[4], uint64_t seed) {
  acc[0] = seed + kP1 + kP2;
  acc[1] = seed + kP2;
  acc[2] = seed;
  acc[3] = seed - kP1;
}

}  // namespace

uint64_t xxh64(const void* data, size_t n, uint64_t seed) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed + kP5;
  size_t used = 0;
  if (n >= 32) {
    uint64_t acc[4];
    init_acc(acc, seed);
    used = consume_stripes(acc, p, n);
    h = converge(acc);
  }
  h += static_cast<uint64_t>(n);
  return finish(h, p + used, n - used);
}

Xxh64::Xxh64(uint64_t seed) : seed_(seed) { init_acc(acc_, seed); }

void Xxh64::update(const void* data, size_t n) {
  if (n == 0) return;  // data may be null
  const uint8_t* p = static_cast<const uint8_t*>(data);
  total_ += n;
  if (buf_n_ > 0) {  // top up the partial stripe first
    const size_t take = n < 32 - buf_n_ ? n : 32 - buf_n_;
    std::memcpy(buf_ + buf_n_, p, take);
    buf_n_ += take;
    p += take;
    n -= take;
    if (buf_n_ < 32) return;
    consume_stripes(acc_, buf_, 32);
    buf_n_ = 0;
  }
  const size_t used = consume_stripes(acc_, p, n);
  if (used < n) std::memcpy(buf_, p + used, n - used);
  buf_n_ = n - used;
}

uint64_t Xxh64::digest() const {
  uint64_t h = total_ >= 32 ? converge(acc_) : seed_ + kP5;
  h += total_;
  return finish(h, buf_, buf_n_);
}

}  // namespace flashlm
