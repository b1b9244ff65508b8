// Tokenizer set-up, special-token partitioning, encode dispatch and decoding.
// The merge algorithms themselves are in merge.cpp.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstring>

#include "formats/gguf.h"
#include "tokenizer/unicode.h"
#include "tokenizer/wordpiece.h"

namespace flashlm::tok {
namespace {

constexpr uint32_t kSpecialAttrs = kAttrControl | kAttrUserDefined | kAttrUnknown;
constexpr const char kSpmSpace[] = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.data() + pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.data() + pos, s.size() - pos);
  return out;
}

// Bytes of a byte-level BPE token: each code point maps back to one byte; code points
// outside the GPT-2 table (not produced by real vocabularies) pass through as UTF-8.
std::string gpt2_decode(const std::string& text) {
  std::string out;
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    int len = utf8_valid_len(p + i, text.size() - i);
    if (len <= 0) {
      out.push_back(text[i++]);
      continue;
    }
    uint32_t c = p[i];
    if (len == 2) c = ((p[i] & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu);
    if (len == 3) c = ((p[i] & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3Fu);
    if (len == 4) c = ((p[i] & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12) | ((p[i + 2] & 0x3Fu) << 6) | (p[i + 3] & 0x3Fu);
    uint8_t b = 0;
    if (gpt2_cpt_to_byte(c, &b)) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(text, i, static_cast<size_t>(len));
    }
    i += static_cast<size_t>(len);
  }
  return out;
}

uint8_t hex_value(char c) {
  if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
  return static_cast<uint8_t>(c - 'A' + 10);
}

// llama.cpp's clean_up_tokenization_spaces: three in-place passes over the bytes.
std::string clean_spaces(std::string a) {
  if (a.size() < 2) return a;
  auto pass = [](std::string& s, auto&& step) {
    std::string out(1, s[0]);
    for (size_t i = 1; i < s.size(); ++i) step(s, i, out);
    s.swap(out);
  };
  pass(a, [](std::string& s, size_t& i, std::string& out) {  // " ?", " !", " .", " ,"
    char x = s[i];
    if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) out.pop_back();
    out.push_back(x);
  });
  if (a.size() < 2) return a;
  pass(a, [](std::string& s, size_t& i, std::string& out) {  // " ' " -> "'"
    char x = s[i];
    if (x == '\'' && i + 1 < s.size() && s[i - 1] == ' ' && s[i + 1] == ' ') {
      out.pop_back();
      s[++i] = '\0';  // the following space is skipped
    }
    out.push_back(x);
  });
  if (a.size() < 2) return a;
  pass(a, [](std::string& s, size_t& i, std::string& out) {  // " 's", " 'm", " 're", " 've"
    char x = s[i];
    if (s[i - 1] == ' ' && x == '\'' && i + 1 < s.size()) {
      char x1 = s[i + 1];
      if (x1 == 's' || x1 == 'm') {
        out.pop_back();
      } else if (x1 != 't' && x1 != 'd' && i + 2 < s.size()) {
        char x2 = s[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) out.pop_back();
      }
    }
    out.push_back(x);
  });
  return a;
}

}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  Result<Vocab> v = vocab_from_gguf(file);
  if (!v) return v.status();
  return from_vocab(std::move(v).value());
}

Result<Tokenizer> Tokenizer::from_vocab(Vocab vocab) {
  if (vocab.attrs.size() != vocab.tokens.size() || vocab.tokens.empty()) {
    if (Status st = vocab_finalize(vocab); !st) return st;
  }
  Tokenizer t;
  t.vocab_ = std::move(vocab);
  if (Status st = t.init(); !st) return st.with_context("tokenizer");
  return t;
}

Status Tokenizer::init() {
  const int32_t n = vocab_.n_vocab();
  token_to_id_.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) token_to_id_[vocab_.tokens[i]] = i;  // later duplicates win

  // Ranked merges: byte-level BPE's, and SentencePiece-style BPE's from a tokenizer.json
  // (GGUF SPM vocabularies have none and merge by score).
  if (vocab_.kind == VocabKind::kBpe || vocab_.spm_ranked_merges) {
    merge_rank_.reserve(vocab_.merges.size());
    for (size_t i = 0; i < vocab_.merges.size(); ++i) {
      const std::string& m = vocab_.merges[i];
      size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) continue;  // malformed: can never match
      uint32_t left_len = static_cast<uint32_t>(sp);
      std::string key(reinterpret_cast<const char*>(&left_len), sizeof(left_len));
      key.append(m, 0, sp);
      key.append(m, sp + 1, std::string::npos);
      merge_rank_.emplace(std::move(key), static_cast<int32_t>(i));  // first occurrence keeps its rank
    }
  }
  if (vocab_.kind == VocabKind::kBpe) {
    Result<PreTokenizer> pre = PreTokenizer::create(vocab_.pre);
    if (!pre) return pre.status();
    pre_.emplace(std::move(pre).value());
    for (int b = 0; b < 256; ++b) {
      append_utf8(gpt2_byte_to_cpt(static_cast<uint8_t>(b)), &byte_enc_[b]);
      // Hugging Face's BPE drops a character that is not a token (with no unknown
      // token, which the tokenizer.json reader demands then), so its neighbours can
      // merge across it; llama.cpp keeps it as an unmergeable symbol.
      if (vocab_.hf_rules && lookup(byte_enc_[b]) == kNoToken) byte_enc_[b].clear();
    }
  }

  // Longest first, as llama.cpp partitions: a longer special wins over its prefixes.
  for (int32_t i = 0; i < n; ++i) {
    if ((vocab_.attrs[i] & kSpecialAttrs) && !vocab_.tokens[i].empty()) specials_.push_back(i);
  }
  std::stable_sort(specials_.begin(), specials_.end(), [&](int32_t a, int32_t b) {
    return vocab_.tokens[a].size() > vocab_.tokens[b].size();
  });
  // The trie holds the texts the partition looks for: the specials (llama.cpp's rule) or
  // a tokenizer.json's added tokens (Hugging Face's).
  std::vector<int32_t> trie_ids = specials_;
  if (vocab_.hf_rules) {
    trie_ids.clear();
    added_special_.assign(static_cast<size_t>(n), false);
    for (const Vocab::AddedToken& a : vocab_.added) {
      if (a.id < 0 || a.id >= n || vocab_.tokens[a.id].empty()) return Status::error("added token id out of range or empty");
      trie_ids.push_back(a.id);
      added_special_[a.id] = a.special;
    }
  }
  trie_token_.assign(1, kNoToken);
  for (int32_t id : trie_ids) {
    uint32_t node = 0;
    for (unsigned char c : vocab_.tokens[id]) {
      uint64_t key = (static_cast<uint64_t>(node) << 8) | c;
      auto [it, inserted] = trie_edges_.try_emplace(key, static_cast<uint32_t>(trie_token_.size()));
      if (inserted) trie_token_.push_back(kNoToken);
      node = it->second;
    }
    trie_token_[node] = id;
  }

  pieces_.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    const uint32_t attr = vocab_.attrs[i];
    const std::string& text = vocab_.tokens[i];
    if (attr & kSpecialAttrs) {
      pieces_[i] = text;
    } else if (attr & kAttrNormal) {
      if (vocab_.kind == VocabKind::kWpm) {
        // A continuation piece joins the word before it; any other starts a new word.
        const std::string& pre = vocab_.wpm.prefix;
        pieces_[i] = text.compare(0, pre.size(), pre) == 0 && text.size() > pre.size() ? text.substr(pre.size())
                                                                                      : " " + text;
      } else {
        pieces_[i] = vocab_.kind == VocabKind::kSpm ? replace_all(text, kSpmSpace, " ") : gpt2_decode(text);
      }
    } else if (attr & kAttrByte) {
      pieces_[i] = std::string(1, static_cast<char>((hex_value(text[3]) << 4) | hex_value(text[4])));
    }  // undefined and unused tokens decode to nothing
  }
  return Status::ok();
}

int32_t Tokenizer::lookup(std::string_view text) const {
  auto it = token_to_id_.find(text);
  if (it == token_to_id_.end()) return kNoToken;
  // Added tokens past a tokenizer.json model's vocabulary are matched in the text only.
  return vocab_.n_model > 0 && it->second >= vocab_.n_model ? kNoToken : it->second;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  auto it = token_to_id_.find(text);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string empty;
  return (id >= 0 && id < n_vocab()) ? vocab_.tokens[id] : empty;
}

bool Tokenizer::is_eog(int32_t id) const {
  return std::binary_search(vocab_.eog_ids.begin(), vocab_.eog_ids.end(), id);
}

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < n_vocab() && (vocab_.attrs[id] & kAttrControl);
}

// Hugging Face tokenizers' split at added tokens: from left to right, the longest added
// token starting at the first position where any starts; a special one is skipped over
// (it stays part of the text around it) when special tokens are not parsed.
std::vector<Tokenizer::Fragment> Tokenizer::partition_leftmost_longest(std::string_view text,
                                                                       bool parse_special) const {
  std::vector<Fragment> frags;
  size_t raw_start = 0, i = 0;
  while (i < text.size()) {
    uint32_t node = 0;
    int32_t best = kNoToken;
    size_t best_len = 0;
    for (size_t j = i; j < text.size(); ++j) {
      auto it = trie_edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[j]));
      if (it == trie_edges_.end()) break;
      node = it->second;
      if (trie_token_[node] != kNoToken) {
        best = trie_token_[node];
        best_len = j - i + 1;
      }
    }
    if (best == kNoToken) {
      ++i;
      continue;
    }
    if (parse_special || !added_special_[best]) {
      if (i > raw_start) frags.push_back({kNoToken, raw_start, i - raw_start});
      frags.push_back({best, i, best_len});
      raw_start = i + best_len;
    }
    i += best_len;
  }
  if (raw_start < text.size()) frags.push_back({kNoToken, raw_start, text.size() - raw_start});
  return frags;
}

std::vector<Tokenizer::Fragment> Tokenizer::partition(std::string_view text, bool parse_special) const {
  if (vocab_.hf_rules) return partition_leftmost_longest(text, parse_special);
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({kNoToken, 0, text.size()});
  if (specials_.empty()) return frags;

  // Which specials occur at all: walk the trie from every position.
  std::vector<int32_t> present;
  for (size_t i = 0; i < text.size(); ++i) {
    uint32_t node = 0;
    for (size_t j = i; j < text.size(); ++j) {
      auto it = trie_edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[j]));
      if (it == trie_edges_.end()) break;
      node = it->second;
      if (trie_token_[node] != kNoToken) present.push_back(trie_token_[node]);
    }
  }
  if (present.empty()) return frags;
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());

  // Same result as llama.cpp: each special in turn (longest first) splits every raw
  // fragment at its leftmost non-overlapping occurrences.
  std::vector<Fragment> next;
  for (int32_t id : specials_) {
    if (!std::binary_search(present.begin(), present.end(), id)) continue;
    if (!parse_special && (vocab_.attrs[id] & (kAttrControl | kAttrUnknown))) continue;
    const std::string& pat = vocab_.tokens[id];
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.offset;
      const size_t end = f.offset + f.length;
      std::string_view window = text.substr(0, end);
      while (pos < end) {
        size_t hit = window.find(pat, pos);
        if (hit == std::string_view::npos) break;
        if (hit > pos) next.push_back({kNoToken, pos, hit - pos});
        next.push_back({id, hit, pat.size()});
        pos = hit + pat.size();
      }
      if (pos < end) next.push_back({kNoToken, pos, end - pos});
    }
    frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  const std::vector<Fragment> frags = partition(text, parse_special);
  if (add_special && vocab_.add_bos && vocab_.bos != kNoToken) out.push_back(vocab_.bos);
  if (vocab_.kind == VocabKind::kSpm) {
    bool prev_special = true;  // a fragment at the start counts as following a special
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string raw;
      if (vocab_.add_space_prefix && prev_special) raw = " ";
      raw.append(text.substr(f.offset, f.length));
      encode_spm(replace_all(raw, " ", kSpmSpace), &out);
      prev_special = false;
    }
  } else {
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
      } else if (vocab_.kind == VocabKind::kWpm) {
        encode_wpm(text.substr(f.offset, f.length), &out);
      } else {
        encode_bpe(text.substr(f.offset, f.length), &out);
      }
    }
  }
  if (add_special && vocab_.add_eos && vocab_.eos != kNoToken) out.push_back(vocab_.eos);
  return out;
}

void Tokenizer::encode_wpm(std::string_view text, std::vector<int32_t>* out) const {
  const std::string normalized = bert_normalize(sanitize_utf8(text), vocab_.wpm);
  std::vector<std::string_view> words;
  bert_pre_split(normalized, &words);
  const auto find = [this](std::string_view piece) { return lookup(piece); };
  for (std::string_view w : words) wordpiece_word(w, vocab_.wpm, vocab_.unk, find, out);
}

std::vector<std::string> Tokenizer::pre_split(std::string_view text) const {
  std::vector<std::string> out;
  if (!pre_) return out;
  const std::string clean = sanitize_utf8(text);
  std::vector<std::string_view> words;
  pre_->split(clean, &words);
  for (std::string_view w : words) out.emplace_back(w);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) return {};
  if (!render_special && (vocab_.attrs[id] & (kAttrControl | kAttrUnknown))) return {};
  return pieces_[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  bool strip_space = vocab_.add_space_prefix;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, render_special);
    size_t skip = (strip_space && !piece.empty() && piece[0] == ' ') ? 1 : 0;
    // llama.cpp lets a hidden BOS use up the strip (SPM keeps the space after it);
    // WordPiece and Hugging Face's Strip decoder strip the text's first space, after
    // an unrendered [CLS] or <s> too.
    if (!piece.empty() || !strip_skips_hidden()) strip_space = false;
    out.append(piece, skip, std::string::npos);
  }
  return vocab_.clean_spaces ? clean_spaces(std::move(out)) : out;
}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_->token_to_piece(id, render_special_);
  if (first_ && tok_->vocab().add_space_prefix && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  if (!piece.empty() || !tok_->strip_skips_hidden()) first_ = false;  // as decode()
  pending_ += piece;

  std::string out;
  const auto* p = reinterpret_cast<const uint8_t*>(pending_.data());
  size_t i = 0;
  while (i < pending_.size()) {
    int len = utf8_valid_len(p + i, pending_.size() - i);
    if (len < 0) break;  // incomplete sequence at the end: wait for more bytes
    if (len == 0) {
      out.append("\xEF\xBF\xBD");
      ++i;
      continue;
    }
    out.append(pending_, i, static_cast<size_t>(len));
    i += static_cast<size_t>(len);
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = pending_.empty() ? std::string() : std::string("\xEF\xBF\xBD");
  pending_.clear();
  first_ = true;
  return out;
}

}  // namespace flashlm::tok
