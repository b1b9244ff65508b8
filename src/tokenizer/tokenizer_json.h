// A Hugging Face tokenizer.json read into a Vocab. Supported: the WordPiece model with
// BertNormalizer (or none), BertPreTokenizer and a post-processor that wraps one
// sequence in one special token on each side (TemplateProcessing or BertProcessing), as
// BERT-style encoders (all-MiniLM, bge, e5) ship it. Any other model or component is
// refused by name. Added tokens become control (special) or user-defined tokens, which
// the tokenizer matches in raw text before normalizing, as tokenizers does for added
// tokens with "normalized": false; "normalized": true ones are refused.
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/vocab.h"
#include "util/status.h"

namespace flashlm::tok {

// `origin` names the file in errors.
Result<Vocab> vocab_from_tokenizer_json(std::string_view json_text, const std::string& origin);
Result<Vocab> vocab_from_tokenizer_json_file(const std::string& path);

}  // namespace flashlm::tok
