// A Hugging Face tokenizer.json read into a Vocab, for flashlm's own tokenizers (no
// second implementation). Supported, each as Hugging Face tokenizers does it:
//   * WordPiece with BertNormalizer (or none), BertPreTokenizer and a post-processor that
//     wraps one sequence in one special token on each side, as BERT-style encoders
//     (all-MiniLM, bge, e5) ship it;
//   * byte-level BPE (SmolLM2, Llama 3, Qwen 2 as converted from GGUF): no normalizer;
//     pre-tokenizer ByteLevel (GPT-2's regex), Sequence [Split(regex), ByteLevel] with the
//     Llama 3, Qwen 2 or GPT-2 regex spelled as Hugging Face spells it, or Sequence
//     [Digits(individual), ByteLevel]; decoder ByteLevel;
//   * SentencePiece-style BPE with byte_fallback (Gemma, Llama 2): normalizer Replace
//     ' ' -> U+2581, optionally with Prepend U+2581; pre-tokenizer none or Split on ' '
//     (a no-op once spaces are replaced); decoder [Replace U+2581 -> ' ', ByteFallback,
//     Fuse] plus Strip(' ', 1, 0) exactly when Prepend is there. Merges are ranked by
//     their order in the file (only listed pairs merge), not by token scores;
//   * post-processors TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel or a
//     Sequence of them, adding one token at most on each side of a single sequence.
// Merges may be "left right" strings or [left, right] pairs; each side and their join
// must be in the vocabulary. Added tokens become control (special) or user-defined tokens
// matched in raw text leftmost-longest before normalizing (Vocab::hf_rules); ones past the
// model's vocabulary extend it. "normalized": true, lstrip, rstrip and single_word are
// refused, as are Unigram, WordLevel, BPE dropout, subword prefixes/suffixes, and every
// other normalizer, pre-tokenizer, decoder or regex, each by name.
//
// A tokenizer_config.json beside the file (vocab_from_tokenizer_json_file) names the
// bos/eos/pad/unk tokens where the tokenizer.json does not (they must agree where both
// do); add_bos_token/add_eos_token must agree with the post-processor;
// clean_up_tokenization_spaces = true is refused. Decoding is the decoder's, which
// tightens no spaces.
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/vocab.h"
#include "util/status.h"

namespace flashlm::tok {

// `origin` names the file in errors; `config_text`, when not empty, is the
// tokenizer_config.json that goes with it.
Result<Vocab> vocab_from_tokenizer_json(std::string_view json_text, const std::string& origin,
                                        std::string_view config_text = {});
Result<Vocab> vocab_from_tokenizer_json_file(const std::string& path);

}  // namespace flashlm::tok
