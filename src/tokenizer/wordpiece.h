// WordPiece as Hugging Face tokenizers runs it for BERT-style models: BertNormalizer
// (clean text, isolate CJK ideographs, strip accents, lowercase), BertPreTokenizer
// (split on whitespace, every punctuation character a word of its own), then WordPiece's
// greedy longest-match-first over each word. Unicode properties come from utf8proc.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace flashlm::tok {

// BertNormalizer over valid UTF-8 (callers sanitize first).
std::string bert_normalize(std::string_view text, const WpmOptions& opt);

// BertPreTokenizer: the words of normalized text, as views into it.
void bert_pre_split(std::string_view text, std::vector<std::string_view>* words);

// WordPiece over one word: appends its pieces' ids, or `unk` alone when the word is
// longer than max_chars_per_word or some part of it matches no piece. `lookup` gives a
// piece's id or kNoToken.
void wordpiece_word(std::string_view word, const WpmOptions& opt, int32_t unk,
                    const std::function<int32_t(std::string_view)>& lookup, std::vector<int32_t>* out);

}  // namespace flashlm::tok
