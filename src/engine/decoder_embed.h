// Sentence embeddings from a decoder model (a GGUF generation model), as llama.cpp's
// embedding mode computes them: the final-norm hidden state of every token (mean), of the
// last (last) or of the first (cls), pooled over one sequence, then L2-normalised as
// llama-server does by default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/runner.h"
#include "util/status.h"

namespace flashlm {

enum class DecoderPooling { kMean, kLast, kCls };

Result<DecoderPooling> decoder_pooling_from_name(const std::string& name);  // mean, last, cls

// Runs `tokens` as a fresh sequence `seq` of `runner` (its earlier positions are dropped)
// with hidden-state output, and returns the pooled, normalised vector of n_embd floats.
// Errors: empty input, a sequence longer than the runner's context.
Result<std::vector<float>> decoder_embed(Runner& runner, int seq, const std::vector<int32_t>& tokens,
                                         DecoderPooling pooling, int64_t n_embd);

}  // namespace flashlm
