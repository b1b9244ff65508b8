// Sentence embeddings from a BERT-style encoder in a Hugging Face model directory
// (config.json, model.safetensors or shards, tokenizer.json, and sentence-transformers'
// module files): text -> WordPiece tokens -> the encoder -> pooling -> optional L2
// normalisation, as sentence-transformers computes them.
//
// The forward pass packs every sequence of a batch into one matrix of tokens, with no
// padding: the matmuls (F32 weights, kernels/cpu/sgemm) run over all tokens of all
// sequences at once, attention runs per sequence and head. Weights are F32 in memory
// (F16/BF16 files are widened at load).
//
// Thread safety: an Encoder is immutable after load; embed() may run on several threads,
// each with its own pool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "embed/sentence_config.h"
#include "kernels/cpu/thread_pool.h"
#include "tokenizer/tokenizer.h"
#include "util/status.h"

namespace flashlm::embed {

struct EncoderWeights;

class Encoder {
 public:
  // `dir`: the model directory. Errors name the file and what is wrong or unsupported.
  static Result<Encoder> load(const std::string& dir);

  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;
  ~Encoder();

  // The tokens the model reads for `text` (with its [CLS]/[SEP]). When `truncate`, the
  // text's tokens are cut to max_tokens() as sentence-transformers cuts them (the closing
  // special token kept); otherwise the full list is returned and may be longer.
  std::vector<int32_t> tokenize(std::string_view text, bool truncate) const;
  // A token list cut to max_tokens() that way (unchanged when it fits).
  std::vector<int32_t> cut(std::vector<int32_t> ids) const;

  // One embedding of dim() floats per sequence. Every sequence must hold 1..max_tokens()
  // ids below the vocabulary size (checked; an error names the sequence).
  Result<std::vector<std::vector<float>>> embed(const std::vector<std::vector<int32_t>>& seqs,
                                                ThreadPool& pool) const;

  int64_t dim() const;
  int64_t max_tokens() const { return sentence_.max_tokens; }
  const SentenceConfig& sentence() const { return sentence_; }
  const BertConfig& config() const { return config_; }
  const tok::Tokenizer& tokenizer() const { return *tok_; }
  const std::string& name() const { return name_; }  // the directory's last component

 private:
  Encoder() = default;
  BertConfig config_;
  SentenceConfig sentence_;
  std::unique_ptr<tok::Tokenizer> tok_;
  std::unique_ptr<EncoderWeights> w_;
  std::string name_;
};

}  // namespace flashlm::embed
