// UTF-8 helpers and the GPT-2 byte <-> unicode mapping used by byte-level BPE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace flashlm::tok {

// Length of a UTF-8 sequence judged from its lead byte alone (1 for continuation and
// invalid bytes), as SentencePiece-style tokenizers split text into characters.
inline size_t utf8_seq_len(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

void append_utf8(uint32_t cpt, std::string* out);

// Length of the valid UTF-8 sequence at s[0..n) (strict: no overlongs, surrogates or
// values above U+10FFFF), 0 if it is invalid, or -1 if it is a valid but incomplete prefix.
int utf8_valid_len(const uint8_t* s, size_t n);

// Replaces every byte that does not start a valid sequence with U+FFFD (one per byte),
// so regex matching can assume valid UTF-8. Returns `text` unchanged when already valid.
std::string sanitize_utf8(std::string_view text);

// GPT-2 byte-level encoding: every byte maps to one printable code point.
uint32_t gpt2_byte_to_cpt(uint8_t b);
// Inverse; returns false for code points outside the mapping.
bool gpt2_cpt_to_byte(uint32_t cpt, uint8_t* b);

}  // namespace flashlm::tok
