// Which tokens go into one step's forward pass: a pure function of how many tokens each
// running sequence has pending, so the policy is testable without a model.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace flashlm {

struct StepChunk {
  size_t seq = 0;          // index into the pending list
  int64_t n_tokens = 0;    // the next n_tokens of that sequence's pending tokens
  bool want_logits = false;  // the chunk reaches the sequence's last pending token
};

// pending[i]: tokens waiting in running sequence i (oldest first); 0 for none. Decode
// tokens (sequences with exactly one pending token) come first, so streams never stall
// behind a long prompt; then prefill chunks, oldest sequence first, until `budget`
// tokens are taken. Every sequence appears at most once. Returns the tokens taken.
// max_chunk (empty, or one per sequence; 0: no limit) caps a sequence's prefill chunk:
// sequences that want a logits row per token (prompt scoring) bound the rows of a step.
int64_t plan_step(std::span<const int64_t> pending, int64_t budget, std::vector<StepChunk>* out,
                  std::span<const int64_t> max_chunk = {});

}  // namespace flashlm
