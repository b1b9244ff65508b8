// How a Hugging Face model directory turns token states into one embedding: the model's
// config.json (which encoder), and sentence-transformers' files beside it (modules.json,
// the Pooling module's config.json, sentence_bert_config.json): pooling, normalisation and
// the longest input. A directory without them gets sentence-transformers' own defaults
// for a plain model: mean pooling, no normalisation, the model's position limit.
#pragma once

#include <cstdint>
#include <string>

#include "embed/pooling.h"
#include "util/status.h"

namespace flashlm::embed {

// config.json of a BERT-style encoder.
struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t ffn = 0;
  int64_t max_positions = 0;
  int64_t type_vocab = 0;
  float ln_eps = 1e-12f;
};

struct SentenceConfig {
  Pooling pooling = Pooling::kMean;
  bool normalize = false;   // L2-normalise the pooled vector (the Normalize module)
  int64_t max_tokens = 0;   // inputs longer than this are truncated (or refused)
};

// Reads config.json; refuses architectures other than BERT's, naming what is supported.
Result<BertConfig> read_bert_config(const std::string& dir);
// `lowercases`: whether the model's tokenizer lowercases (do_lower_case needs it).
Result<SentenceConfig> read_sentence_config(const std::string& dir, const BertConfig& model, bool lowercases);

}  // namespace flashlm::embed
