#include "tokenizer/unicode.h"

namespace flashlm::tok {
namespace {

// Bytes GPT-2 keeps as their own code point: '!'..'~', U+00A1..U+00AC, U+00AE..U+00FF.
constexpr bool gpt2_printable(uint32_t b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

}  // namespace

void append_utf8(uint32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

int utf8_valid_len(const uint8_t* s, size_t n) {
  if (n == 0) return -1;
  const uint8_t b0 = s[0];
  if (b0 < 0x80) return 1;
  int len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    return 0;
  }
  for (int i = 1; i < len; ++i) {
    if (static_cast<size_t>(i) >= n) return -1;
    const uint8_t lo_i = (i == 1) ? lo : 0x80, hi_i = (i == 1) ? hi : 0xBF;
    if (s[i] < lo_i || s[i] > hi_i) return 0;
  }
  return len;
}

std::string sanitize_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  std::string out;
  size_t i = 0, copied = 0;
  bool changed = false;
  while (i < n) {
    int len = utf8_valid_len(p + i, n - i);
    if (len > 0) {
      i += static_cast<size_t>(len);
      continue;
    }
    if (!changed) {
      out.reserve(n + 16);
      changed = true;
    }
    out.append(text.data() + copied, i - copied);
    out.append("\xEF\xBF\xBD");
    ++i;
    copied = i;
  }
  if (!changed) return std::string(text);
  out.append(text.data() + copied, n - copied);
  return out;
}

uint32_t gpt2_byte_to_cpt(uint8_t b) {
  if (gpt2_printable(b)) return b;
  uint32_t n = 0;  // rank of b among the non-printable bytes
  for (uint32_t x = 0; x < b; ++x) n += gpt2_printable(x) ? 0 : 1;
  return 256 + n;
}

bool gpt2_cpt_to_byte(uint32_t cpt, uint8_t* b) {
  if (cpt < 256) {
    if (!gpt2_printable(cpt)) return false;
    *b = static_cast<uint8_t>(cpt);
    return true;
  }
  uint32_t n = cpt - 256;
  for (uint32_t x = 0; x < 256; ++x) {
    if (gpt2_printable(x)) continue;
    if (n == 0) {
      *b = static_cast<uint8_t>(x);
      return true;
    }
    --n;
  }
  return false;
}

}  // namespace flashlm::tok
