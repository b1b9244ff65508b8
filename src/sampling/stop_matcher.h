// Streaming stop-string matcher.
//
// Feed detokenized text pieces as they arrive; each call returns the text that is safe to
// send to the client now. Text that could still turn into a stop string is held back, as is
// an incomplete UTF-8 sequence at the end (so every emitted chunk of valid UTF-8 input is
// itself valid UTF-8). When a stop string appears, the text before it is emitted, the stop
// string and everything after it are dropped, and the matcher stays stopped.
// Matching is on bytes, so stop strings split anywhere (even inside a multibyte character)
// across pieces are found.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace flashlm {

class StopMatcher {
 public:
  // Empty stop strings are ignored (they would match before any text).
  explicit StopMatcher(std::vector<std::string> stops);

  struct Out {
    std::string emit;
    bool stopped = false;
  };

  Out feed(std::string_view piece);

  // End of generation without a stop: returns whatever was held back. Empty once stopped.
  std::string flush();

  bool stopped() const { return stopped_; }

 private:
  // Length of the longest suffix of text that is a proper prefix of some stop string.
  size_t partial_stop_suffix(std::string_view text) const;

  std::vector<std::string> stops_;
  std::string pending_;  // held-back text, never containing a full stop string
  bool stopped_ = false;
};

}  // namespace flashlm
