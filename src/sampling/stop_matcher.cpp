#include "sampling/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace flashlm {
namespace {

// Bytes at the end of text that start a UTF-8 sequence not yet complete. Invalid input is
// never held (a stray continuation byte or a bad lead returns 0), so nothing waits forever.
size_t incomplete_utf8_tail(std::string_view text) {
  size_t n_cont = 0;
  while (n_cont < 3 && n_cont < text.size() &&
         (static_cast<unsigned char>(text[text.size() - 1 - n_cont]) & 0xC0) == 0x80) {
    ++n_cont;
  }
  if (n_cont == text.size()) return 0;
  const auto lead = static_cast<unsigned char>(text[text.size() - 1 - n_cont]);
  size_t need = 0;
  if ((lead & 0xE0) == 0xC0) {
    need = 2;
  } else if ((lead & 0xF0) == 0xE0) {
    need = 3;
  } else if ((lead & 0xF8) == 0xF0) {
    need = 4;
  } else {
    return 0;  // ASCII or not a lead byte
  }
  return n_cont + 1 < need ? n_cont + 1 : 0;
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

size_t StopMatcher::partial_stop_suffix(std::string_view text) const {
  size_t best = 0;
  for (const std::string& stop : stops_) {
    // Only proper prefixes: a whole stop string would already have been matched.
    for (size_t len = std::min(stop.size() - 1, text.size()); len > best; --len) {
      if (text.substr(text.size() - len) == std::string_view(stop).substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

StopMatcher::Out StopMatcher::feed(std::string_view piece) {
  Out out;
  if (stopped_) {
    out.stopped = true;
    return out;
  }
  pending_.append(piece);

  // The earliest occurrence of any stop string wins. pending_ holds every position where a
  // stop could still begin (see partial_stop_suffix), so searching it alone is enough.
  size_t first = std::string::npos;
  for (const std::string& stop : stops_) first = std::min(first, pending_.find(stop));
  if (first != std::string::npos) {
    pending_.resize(first);
    out.emit = std::move(pending_);
    pending_.clear();
    out.stopped = stopped_ = true;
    return out;
  }

  const size_t hold = std::max(partial_stop_suffix(pending_), incomplete_utf8_tail(pending_));
  const size_t n_emit = pending_.size() - hold;
  out.emit.assign(pending_, 0, n_emit);
  pending_.erase(0, n_emit);
  return out;
}

std::string StopMatcher::flush() {
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

}  // namespace flashlm
