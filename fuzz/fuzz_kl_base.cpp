// libFuzzer target: arbitrary bytes are a KL base file (flashlm perplexity --kl-base).
// Each input is tried as given and with its trailing checksum recomputed, so mutations
// reach the header and size checks. A file that parses must encode back to exactly the
// same bytes, and scoring every stored position against arbitrary logits must stay in
// bounds (the ids were checked against the vocabulary).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "factory/kl_divergence.h"
#include "util/xxhash64.h"

using namespace flashlm;

namespace {

volatile double g_sink;

void try_parse(const std::vector<uint8_t>& bytes) {
  Result<factory::KlBase> b = factory::parse_kl_base(bytes);
  if (!b) return;
  if (factory::encode_kl_base(*b) != bytes) std::abort();  // accepted only what the writer writes
  if (b->n_vocab > (1u << 20)) return;  // keep a run's memory small; the checks above already ran
  std::vector<float> logits(b->n_vocab);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i % 7) - 3.0f;
  factory::KlAccumulator acc(*b);
  for (size_t p = 0; p < b->n_positions() && p < 64; ++p) {
    if (!acc.add(p, logits.data())) std::abort();
  }
  g_sink = acc.summary().kl_mean;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  try_parse(bytes);
  if (size >= 8) {
    const uint64_t sum = xxh64(bytes.data(), size - 8);
    std::memcpy(bytes.data() + size - 8, &sum, 8);
    try_parse(bytes);
  }
  return 0;
}
