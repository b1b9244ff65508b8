#include "util/xxhash64.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace flashlm {
namespace {

// Message bytes: byte i = (i * 131 + 7) & 0xff.
std::vector<uint8_t> message(size_t n) {
  std::vector<uint8_t> m(n);
  for (size_t i = 0; i < n; ++i) m[i] = static_cast<uint8_t>((i * 131 + 7) & 0xff);
  return m;
}

struct Vector {
  size_t n;
  uint64_t seed;
  uint64_t expected;
};

// Expected values from the reference C library (Debian's libxxhash0 0.8.1), called
// through Python ctypes: XXH64(message(n), n, seed). Lengths cover every tail path
// (8-, 4- and 1-byte steps) on both sides of the 32-byte stripe.
constexpr uint64_t kSeed = 0x9E3779B97F4A7C15ull;
const Vector kVectors[] = {
    {0, 0, 0xef46db3751d8e999ull},    {0, kSeed, 0xc4349fc93c010000ull},
    {1, 0, 0xa96c7f0ce858bbb7ull},    {1, kSeed, 0x585882422a6165e7ull},
    {3, 0, 0xbed43740ee6332bbull},    {3, kSeed, 0x45fa1406538fa168ull},
    {4, 0, 0xfa212ae44b3bb23dull},    {4, kSeed, 0xa65107f22943365aull},
    {7, 0, 0x2744460dd675d2c0ull},    {7, kSeed, 0xc9b637e2c4599de2ull},
    {8, 0, 0x994b676b71ce94ddull},    {8, kSeed, 0xce592d5f53e192ecull},
    {15, 0, 0x09e6451ed2ff8b1dull},   {15, kSeed, 0x47a857d1f90c35e1ull},
    {31, 0, 0x6711d55e306b5d8full},   {31, kSeed, 0x24c4e99ab0404b5eull},
    {32, 0, 0x07f7b8e3bc5d6e25ull},   {32, kSeed, 0x046e99bbda1a814bull},
    {33, 0, 0x09f85eeb4e1cbe9full},   {33, kSeed, 0xd7fe2bfee6e4cdedull},
    {63, 0, 0xb7c9968c066cb6a5ull},   {63, kSeed, 0xbd457f9ea47180c8ull},
    {64, 0, 0x50d4159a0411632eull},   {64, kSeed, 0xa768f350a8e4fcf6ull},
    {100, 0, 0x9ddada11d3dc2d8full}, {100, kSeed, 0x35546bd9a4779ae4ull},
    {1000, 0, 0x0bf0bdbcc82eb373ull}, {1000, kSeed, 0x3ecb5d7b5e7c64cfull},
};

TEST(Xxh64, MatchesReferenceLibrary) {
  for (const Vector& v : kVectors) {
    const std::vector<uint8_t> m = message(v.n);
    EXPECT_EQ(xxh64(m.data(), m.size(), v.seed), v.expected) << "n=" << v.n << " seed=" << v.seed;
  }
  EXPECT_EQ(xxh64("abc", 3), 0x44bc2cf5ad770999ull);
}

TEST(Xxh64, StreamingEqualsOneShotForEverySplit) {
  const std::vector<uint8_t> m = message(200);
  for (size_t n : {0, 5, 31, 32, 33, 64, 97, 200}) {
    const uint64_t want = xxh64(m.data(), n, 42);
    for (size_t step = 1; step <= 40; ++step) {
      Xxh64 h(42);
      for (size_t at = 0; at < n; at += step) h.update(m.data() + at, std::min(step, n - at));
      ASSERT_EQ(h.digest(), want) << "n=" << n << " step=" << step;
    }
  }
  Xxh64 empty;
  empty.update(nullptr, 0);
  EXPECT_EQ(empty.digest(), 0xef46db3751d8e999ull);
}

}  // namespace
}  // namespace flashlm
