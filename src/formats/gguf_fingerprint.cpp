#include "formats/gguf_fingerprint.h"

#include <algorithm>

#include "util/xxhash64.h"

namespace flashlm::gguf {
namespace {

constexpr uint64_t kSeed = 0x666c6d2d66707231ull;  // "flm-fpr1": bump to change the scheme
constexpr size_t kTensorSample = 64;
constexpr size_t kPages = 64;
constexpr size_t kPageBytes = 4096;

}  // namespace

uint64_t model_fingerprint(const File& f) {
  const uint8_t* base = f.bytes();
  const uint64_t size = f.file_size();
  Xxh64 h(kSeed);
  h.update_value(size);
  const uint64_t head = std::min<uint64_t>(f.data_offset(), size);
  h.update(base, head);
  for (const TensorInfo& t : f.tensors()) {
    const uint64_t n = t.size_bytes;
    h.update(t.data, std::min<uint64_t>(n, kTensorSample));
    h.update(t.data + n / 2, std::min<uint64_t>(n - n / 2, kTensorSample));
  }
  const uint64_t data_len = size - head;
  if (data_len > 0) {
    const uint64_t span = data_len > kPageBytes ? data_len - kPageBytes : 0;
    for (size_t i = 0; i < kPages; ++i) {
      const uint64_t off = head + span * i / (kPages - 1);
      h.update(base + off, std::min<uint64_t>(kPageBytes, size - off));
    }
  }
  return h.digest();
}

}  // namespace flashlm::gguf
