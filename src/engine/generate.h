// Single-sequence generation on a Runner: prompt -> sampled tokens -> streamed text with
// stop strings and end-of-generation handling. The server's batched step loop (later)
// keeps the same pieces per sequence: Sampler, StreamDecoder, StopMatcher.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/runner.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace flashlm {

using tok::StreamDecoder;
using tok::Tokenizer;

struct GenerateOptions {
  int n_predict = -1;  // < 0: until end of generation or the context is full
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings
  bool ignore_eos = false;
};

struct GenerateStats {
  int64_t n_prompt = 0;       // tokens evaluated for the prompt (after reuse)
  int64_t n_generated = 0;
  double prompt_ms = 0.0;
  double gen_ms = 0.0;
  std::string finish_reason;  // "stop" (EOS or stop string), "length"
  std::vector<int32_t> generated;  // sampled token ids
};

// Evaluates `prompt` appended to `seq` (which may already hold earlier tokens), then
// samples until a stop condition. on_text receives valid UTF-8 pieces; returning false
// cancels generation.
Status generate(Runner& runner, int seq, const Tokenizer& tok, std::span<const int32_t> prompt,
                const GenerateOptions& opts, const std::function<bool(std::string_view)>& on_text,
                GenerateStats* stats);

}  // namespace flashlm
