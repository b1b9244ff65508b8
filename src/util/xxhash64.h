// XXH64, the 64-bit xxHash (Yann Collet's published algorithm, written here from its
// specification): a fast non-cryptographic hash used for checksums of files we wrote
// ourselves and for identities (model fingerprint, KV store namespace). Not a defence
// against deliberate collisions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flashlm {

// One-shot hash of n bytes.
uint64_t xxh64(const void* data, size_t n, uint64_t seed = 0);

// Streaming form: update() any number of times, digest() equals xxh64() of the
// concatenated bytes. digest() does not change the state.
class Xxh64 {
 public:
  explicit Xxh64(uint64_t seed = 0);
  void update(const void* data, size_t n);
  template <typename T>
  void update_value(const T& v) {  // a trivially copyable value's bytes
    update(&v, sizeof(T));
  }
  uint64_t digest() const;

 private:
  uint64_t seed_;
  uint64_t acc_[4];
  uint64_t total_ = 0;
  uint8_t buf_[32];
  size_t buf_n_ = 0;
};

}  // namespace flashlm
