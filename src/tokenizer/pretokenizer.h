// Regex pre-tokenizer for byte-level BPE: splits text into the words that BPE merges
// within. Uses PCRE2 (UTF + UCP) so \p{L} / \p{N} are real Unicode classes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"
#include "util/status.h"

namespace flashlm::tok {

class PreTokenizer {
 public:
  // Compiles the regex set llama.cpp uses for `kind`. Fails only if PCRE2 rejects a
  // pattern (a build problem, reported as a value).
  static Result<PreTokenizer> create(PreTokenizerKind kind);

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Appends the pieces of `text` (views into it, covering it in order). Each regex of
  // the set splits every piece of the previous one; text between matches stays a piece
  // of its own. `text` must be valid UTF-8 (see sanitize_utf8).
  void split(std::string_view text, std::vector<std::string_view>* pieces) const;

  // The patterns, for diagnostics.
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  PreTokenizer() = default;
  struct Compiled;
  std::vector<std::string> patterns_;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace flashlm::tok
