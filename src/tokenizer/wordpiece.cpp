#include "tokenizer/wordpiece.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "tokenizer/unicode.h"

namespace flashlm::tok {
namespace {

// Decodes valid UTF-8 into code points.
std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) {  // not reachable for sanitized text; skip the byte rather than loop
      ++i;
      continue;
    }
    out.push_back(static_cast<uint32_t>(cp));
    i += static_cast<size_t>(n);
  }
  return out;
}

// Unicode's White_Space property (Rust's char::is_whitespace, which tokenizers uses).
bool is_whitespace(uint32_t c) {
  if (c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0 || c == 0x1680) return true;
  if (c >= 0x2000 && c <= 0x200A) return true;
  return c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// What tokenizers' BertNormalizer counts as "other" (its unicode_categories crate's
// is_other): control, format and private use. Unassigned code points are kept (and
// become the unknown token), as there.
bool is_other(uint32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CO:
      return true;
    default:
      return false;
  }
}

bool is_punctuation(uint32_t c) {  // ASCII punctuation (incl. $+<=>^`|~) or category P*
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                       (c >= 0x7B && c <= 0x7E);
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

// The CJK ideograph blocks BERT isolates (tokenizers' list, which differs from the
// original BERT's in one bound: 0x2B920, not 0x2B820).
bool is_chinese_char(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Canonical decomposition with canonical ordering (NFD) of a code point sequence.
std::vector<uint32_t> nfd(const std::vector<uint32_t>& cps) {
  std::string utf8;
  for (uint32_t c : cps) append_utf8(c, &utf8);
  utf8proc_uint8_t* dst = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                                    static_cast<utf8proc_ssize_t>(utf8.size()), &dst,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
  if (n < 0) return cps;  // only on invalid input, which callers exclude
  std::vector<uint32_t> out = code_points(std::string_view(reinterpret_cast<const char*>(dst), static_cast<size_t>(n)));
  std::free(dst);
  return out;
}

}  // namespace

std::string bert_normalize(std::string_view text, const WpmOptions& opt) {
  std::vector<uint32_t> cps = code_points(text);
  if (opt.clean_text) {
    // Controls go first (tab, newline and return are whitespace, not controls), then
    // every remaining whitespace character becomes a space.
    std::vector<uint32_t> kept;
    kept.reserve(cps.size());
    for (uint32_t c : cps) {
      const bool ws_control = c == '\t' || c == '\n' || c == '\r';
      if (c == 0 || c == 0xFFFD || (!ws_control && is_other(c))) continue;
      kept.push_back(is_whitespace(c) ? ' ' : c);
    }
    cps.swap(kept);
  }
  if (opt.chinese_chars) {
    std::vector<uint32_t> spaced;
    spaced.reserve(cps.size());
    for (uint32_t c : cps) {
      if (is_chinese_char(c)) {
        spaced.push_back(' ');
        spaced.push_back(c);
        spaced.push_back(' ');
      } else {
        spaced.push_back(c);
      }
    }
    cps.swap(spaced);
  }
  if (opt.strip_accents) {
    std::vector<uint32_t> stripped;
    for (uint32_t c : nfd(cps)) {
      if (utf8proc_category(static_cast<utf8proc_int32_t>(c)) != UTF8PROC_CATEGORY_MN) stripped.push_back(c);
    }
    cps.swap(stripped);
  }
  std::string out;
  out.reserve(text.size() + 8);
  for (uint32_t c : cps) {
    if (opt.lowercase) {
      if (c == 0x130) {  // the one full lowercase mapping of more than one code point
        out += 'i';
        append_utf8(0x307, &out);
        continue;
      }
      c = static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
    }
    append_utf8(c, &out);
  }
  return out;
}

void bert_pre_split(std::string_view text, std::vector<std::string_view>* words) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  size_t i = 0, start = 0;
  bool in_word = false;
  while (i < text.size()) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    const size_t len = n > 0 ? static_cast<size_t>(n) : 1;
    const uint32_t c = n > 0 ? static_cast<uint32_t>(cp) : 0xFFFD;
    if (is_whitespace(c) || is_punctuation(c)) {
      if (in_word) words->push_back(text.substr(start, i - start));
      in_word = false;
      if (!is_whitespace(c)) words->push_back(text.substr(i, len));
    } else if (!in_word) {
      in_word = true;
      start = i;
    }
    i += len;
  }
  if (in_word) words->push_back(text.substr(start));
}

void wordpiece_word(std::string_view word, const WpmOptions& opt, int32_t unk,
                    const std::function<int32_t(std::string_view)>& lookup, std::vector<int32_t>* out) {
  // Character boundaries of the word.
  std::vector<size_t> bounds;
  const auto* p = reinterpret_cast<const uint8_t*>(word.data());
  for (size_t i = 0; i < word.size();) {
    bounds.push_back(i);
    i += utf8_seq_len(p[i]);
  }
  bounds.push_back(word.size());
  const size_t n_chars = bounds.size() - 1;
  if (n_chars > static_cast<size_t>(opt.max_chars_per_word)) {
    out->push_back(unk);
    return;
  }
  const size_t first = out->size();
  std::string piece;
  size_t s = 0;
  while (s < n_chars) {
    int32_t found = kNoToken;
    size_t e = n_chars;
    // No piece is longer than the vocabulary's longest token: start there, so a word
    // costs O(length x longest token), not O(length^2) lookups.
    const size_t extra = s > 0 ? opt.prefix.size() : 0;
    const size_t budget = static_cast<size_t>(opt.max_token_bytes) > extra ? opt.max_token_bytes - extra : 0;
    if (bounds[e] - bounds[s] > budget) {  // the last boundary within the budget
      e = static_cast<size_t>(std::upper_bound(bounds.begin() + static_cast<std::ptrdiff_t>(s), bounds.end(),
                                               bounds[s] + budget) - bounds.begin()) - 1;
    }
    for (; e > s; --e) {
      piece.clear();
      if (s > 0) piece = opt.prefix;
      piece.append(word.substr(bounds[s], bounds[e] - bounds[s]));
      found = lookup(piece);
      if (found != kNoToken) break;
    }
    if (found == kNoToken) {  // some part matches nothing: the whole word is unknown
      out->resize(first);
      out->push_back(unk);
      return;
    }
    out->push_back(found);
    s = e;
  }
}

}  // namespace flashlm::tok
