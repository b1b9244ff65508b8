// Pooling of token rows into one sentence vector, shared by the encoder (embed/encoder.h)
// and decoder-model embeddings (engine/decoder_embed.h): mean, first token (cls), element-
// wise max, last token, or the sum over sqrt(length) (sentence-transformers'
// mean_sqrt_len), optionally L2-normalised.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace flashlm::embed {

enum class Pooling { kMean, kCls, kMax, kLastToken, kMeanSqrtLen };

const char* pooling_name(Pooling p);
Result<Pooling> pooling_from_name(const std::string& name);  // mean, cls, max, last, mean_sqrt_len

// rows: [n_rows][dim], n_rows >= 1. Sums in double; normalising divides by
// max(norm, 1e-12), torch.nn.functional.normalize's eps.
std::vector<float> pool_rows(const float* rows, int64_t n_rows, int64_t dim, Pooling p, bool normalize);

}  // namespace flashlm::embed
