// Sentence embeddings from a decoder model (a GGUF generation model), as llama.cpp's
// embedding mode computes them: the final-norm hidden states of the sequence's tokens,
// pooled (embed/pooling.h: mean, last and cls as llama.cpp's --pooling; max and
// mean_sqrt_len too), then L2-normalised as llama-server does by default.
#pragma once

#include <cstdint>
#include <vector>

#include "embed/pooling.h"
#include "engine/runner.h"
#include "util/status.h"

namespace flashlm {

// Runs `tokens` as a fresh sequence `seq` of `runner` (its earlier positions are dropped)
// with hidden-state output, and returns the pooled, normalised vector of n_embd floats.
// Errors: empty input, a sequence longer than the runner's context.
Result<std::vector<float>> decoder_embed(Runner& runner, int seq, const std::vector<int32_t>& tokens,
                                         embed::Pooling pooling, int64_t n_embd);

}  // namespace flashlm
