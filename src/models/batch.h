// The unit of work of a forward pass: tokens from one or more sequences, each with its
// position and KV sequence id, and which rows need logits.
#pragma once

#include <cstdint>
#include <vector>

namespace flashlm {

struct Batch {
  std::vector<int32_t> tokens;       // [n_tokens]
  std::vector<int32_t> pos;          // [n_tokens] position within its sequence
  std::vector<int32_t> seq;          // [n_tokens] KV sequence id
  std::vector<uint8_t> want_logits;  // [n_tokens] 1: produce a logits row

  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
  void clear() { tokens.clear(); pos.clear(); seq.clear(); want_logits.clear(); }
  void add(int32_t token, int32_t p, int32_t s, bool logits) {
    tokens.push_back(token);
    pos.push_back(p);
    seq.push_back(s);
    want_logits.push_back(logits ? 1 : 0);
  }
  int64_t n_logits() const {
    int64_t n = 0;
    for (uint8_t w : want_logits) n += w;
    return n;
  }
};

}  // namespace flashlm
