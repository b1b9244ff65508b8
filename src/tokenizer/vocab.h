// The tokenizer vocabulary as plain data, read and validated from GGUF metadata.
// Semantics (defaults, token attributes, end-of-generation set) follow llama.cpp so that
// a GGUF tokenizes here exactly as it does there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace flashlm::gguf {
class File;
}

namespace flashlm::tok {

// GGUF `tokenizer.ggml.token_type` values.
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

// Attribute bits derived from the type (plus fix-ups by token text, as llama.cpp does).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
};

enum class VocabKind {
  kBpe,  // "gpt2": byte-level BPE with ranked merges
  kSpm,  // "llama": SentencePiece-style score-ranked merges with byte fallback
  kWpm,  // "bert": WordPiece (greedy longest match) after BERT's normalizer and splitter
};

// WordPiece's settings, as Hugging Face tokenizer.json's BertNormalizer and WordPiece
// model name them (the defaults are BERT's uncased ones, which GGUF "bert" files assume).
struct WpmOptions {
  bool clean_text = true;      // drop control characters, whitespace becomes ' '
  bool chinese_chars = true;   // CJK ideographs become words of their own
  bool strip_accents = true;   // NFD, then combining marks removed
  bool lowercase = true;
  int32_t max_chars_per_word = 100;  // longer words become the unknown token
  std::string prefix = "##";         // marks a piece that continues a word
  int32_t max_token_bytes = 1 << 30;  // the longest token's bytes (bounds the matching)
};

// Which regex set splits text before byte-level BPE (tokenizer.ggml.pre).
enum class PreTokenizerKind { kDefault, kGpt2, kSmollm, kLlama3, kQwen2 };

constexpr int32_t kNoToken = -1;

struct Vocab {
  VocabKind kind = VocabKind::kBpe;
  PreTokenizerKind pre = PreTokenizerKind::kDefault;
  std::string pre_name;  // tokenizer.ggml.pre as stored

  std::vector<std::string> tokens;  // [n_vocab] token text (GPT-2 byte-encoded for BPE)
  std::vector<float> scores;        // [n_vocab] SPM merge scores (0 when absent)
  std::vector<TokenType> types;     // [n_vocab]
  std::vector<uint32_t> attrs;      // [n_vocab] TokenAttr bits
  std::vector<std::string> merges;  // BPE merges "left right", rank = index (kBpe; kSpm when spm_ranked_merges)

  int32_t bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken;
  int32_t unk = kNoToken, pad = kNoToken, sep = kNoToken;
  int32_t fim_pad = kNoToken, fim_rep = kNoToken, fim_sep = kNoToken;
  std::vector<int32_t> eog_ids;  // sorted: tokens that end generation

  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SPM: prefix " " to text that starts a fragment
  bool clean_spaces = false;      // decode: drop spaces before ?!., and some contractions
  bool ignore_merges = false;     // BPE: a pre-token that is itself a token is kept whole
  // kSpm: merge only the pairs `merges` lists, lowest rank first, instead of any pair
  // whose concatenation is a token, highest score first (a tokenizer.json's BPE with
  // byte fallback; GGUF "llama" vocabularies merge by score).
  bool spm_ranked_merges = false;
  WpmOptions wpm;                 // kWpm only

  // Hugging Face tokenizers' rules where they differ from llama.cpp's (a tokenizer.json):
  // the text is split at `added` tokens only, leftmost-longest (at the first position
  // any of them starts, the longest), a special one staying text when special tokens
  // are not parsed; control and user-defined attributes come from the types alone (the
  // added tokens' "special"), not from token texts; byte-level BPE drops a byte whose
  // character is not a token; decoding's leading-space strip skips tokens that render
  // empty.
  struct AddedToken {
    int32_t id;
    bool special;
  };
  bool hf_rules = false;
  std::vector<AddedToken> added;  // hf_rules only
  // Ids from n_model on are added tokens past the model's vocabulary: found in the text
  // only, never by merging or lookups of the model (0: every id is the model's).
  int32_t n_model = 0;

  int32_t n_vocab() const { return static_cast<int32_t>(tokens.size()); }
};

// Reads tokenizer.ggml.* and applies llama.cpp's defaults and fix-ups. Errors name the key.
Result<Vocab> vocab_from_gguf(const gguf::File& file);

// Checks array lengths, id ranges and byte-token texts; derives attrs (when empty) and the
// end-of-generation set. vocab_from_gguf calls it; tests build a Vocab by hand and call it.
Status vocab_finalize(Vocab& v);

Result<PreTokenizerKind> pre_tokenizer_from_name(const std::string& name);

}  // namespace flashlm::tok
