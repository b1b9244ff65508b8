// Text <-> token ids for GGUF models: byte-level BPE ("gpt2") and SentencePiece-style
// BPE ("llama"), matching llama.cpp's tokenization of the same file id for id; and the
// same two BPE kinds and WordPiece from a Hugging Face tokenizer.json (tokenizer_json.h),
// matching Hugging Face tokenizers.
//
// Thread safety: a Tokenizer is immutable after from_gguf/from_vocab; encode and decode
// may run concurrently. StreamDecoder holds per-stream state and is not shared.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"
#include "util/status.h"

namespace flashlm::gguf {
class File;
}

namespace flashlm::tok {

class Tokenizer {
 public:
  static Result<Tokenizer> from_gguf(const gguf::File& file);
  static Result<Tokenizer> from_vocab(Vocab vocab);  // vocab_finalize is applied if needed

  // add_special: BOS/EOS as the vocabulary's add_bos/add_eos flags say.
  // parse_special: text of control tokens (e.g. "<|im_start|>") becomes that token;
  // user-defined tokens are always recognised, as in llama.cpp. Invalid UTF-8 never
  // fails: SPM falls back to byte tokens, BPE sees U+FFFD.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Bytes of one token (may be part of a UTF-8 sequence). Control and unknown tokens
  // give "" unless render_special.
  std::string token_to_piece(int32_t id, bool render_special = false) const;

  // Concatenated pieces, with llama.cpp's detokenize rules: a leading space from
  // add_space_prefix is removed and, for vocabularies with clean_spaces, " ?"/" !"/" ."/
  // " ," and some " 's"-style contractions are tightened. Raw bytes, not validated.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

  int32_t n_vocab() const { return vocab_.n_vocab(); }
  int32_t bos() const { return vocab_.bos; }
  int32_t eos() const { return vocab_.eos; }
  int32_t eot() const { return vocab_.eot; }
  bool add_bos() const { return vocab_.add_bos; }
  bool is_eog(int32_t id) const;
  bool is_control(int32_t id) const;
  // Stored token text ("" for an out-of-range id).
  const std::string& token_text(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view text) const;
  const Vocab& vocab() const { return vocab_; }
  // Whether decoding's leading-space strip passes over tokens that render empty.
  bool strip_skips_hidden() const { return vocab_.kind == VocabKind::kWpm || vocab_.hf_rules; }

  Tokenizer(Tokenizer&&) noexcept = default;
  Tokenizer& operator=(Tokenizer&&) noexcept = default;

  // The pre-tokenizer's pieces of `text` as UTF-8 (BPE only; empty for SPM). For tests
  // and diagnostics.
  std::vector<std::string> pre_split(std::string_view text) const;

 private:
  Tokenizer() = default;
  Status init();

  struct Fragment {
    int32_t token;  // kNoToken for raw text
    size_t offset, length;
  };
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  std::vector<Fragment> partition_leftmost_longest(std::string_view text, bool parse_special) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>* out) const;
  void encode_bpe_word(std::string_view word, std::vector<int32_t>* out) const;
  void encode_spm(std::string_view text, std::vector<int32_t>* out) const;
  void encode_wpm(std::string_view text, std::vector<int32_t>* out) const;
  int32_t lookup(std::string_view text) const;  // a token of the model (below Vocab::n_model); kNoToken when absent
  int32_t bpe_rank(std::string_view left, std::string_view right) const;
  int32_t spm_byte_token(uint8_t b) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

  Vocab vocab_;
  StringMap token_to_id_;
  StringMap merge_rank_;  // key: 4-byte length of left ++ left ++ right
  std::vector<int32_t> specials_;  // control/user-defined/unknown ids, longest text first
  // Trie over special texts, to find which of them occur in a text without scanning
  // all of them: edges keyed by (node << 8 | byte); a node's id is its terminal token.
  std::unordered_map<uint64_t, uint32_t> trie_edges_;
  std::vector<int32_t> trie_token_;
  std::vector<bool> added_special_;  // [n_vocab] hf_rules: the added token is special
  std::vector<std::string> pieces_;  // [n_vocab] decoded bytes of each token (rendered)
  std::string byte_enc_[256];        // GPT-2 byte -> UTF-8 of its code point ("": dropped)
  std::optional<PreTokenizer> pre_;
};

// Turns a stream of token ids into text that is always complete, valid UTF-8: bytes of
// a partial sequence are held back until it completes, invalid bytes become U+FFFD.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = false)
      : tok_(&tok), render_special_(render_special) {}
  // Text that became complete with this token (may be empty).
  std::string push(int32_t id);
  // Whatever is still held back, as U+FFFD; resets the stream.
  std::string flush();

 private:
  const Tokenizer* tok_;
  bool render_special_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace flashlm::tok
