#include "sampling/stop_matcher.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace flashlm {
namespace {

// Feeds the pieces in order and returns everything emitted (plus flush() if not stopped).
struct Streamed {
  std::string text;
  std::vector<std::string> emits;
  bool stopped = false;
};

Streamed run(std::vector<std::string> stops, const std::vector<std::string>& pieces) {
  StopMatcher m(std::move(stops));
  Streamed r;
  for (const std::string& p : pieces) {
    StopMatcher::Out out = m.feed(p);
    r.emits.push_back(out.emit);
    r.text += out.emit;
    r.stopped = out.stopped;
  }
  if (!r.stopped) r.text += m.flush();
  return r;
}

TEST(StopMatcher, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.feed("Hello").emit, "Hello");
  EXPECT_EQ(m.feed(", world <").emit, ", world <");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, EmptyStopStringsAreIgnored) {
  Streamed r = run({"", ""}, {"abc", "def"});
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.emits, (std::vector<std::string>{"abc", "def"}));
}

TEST(StopMatcher, StopInsideOnePieceDropsStopAndTail) {
  StopMatcher m({"</s>"});
  StopMatcher::Out out = m.feed("Hello</s>world");
  EXPECT_EQ(out.emit, "Hello");
  EXPECT_TRUE(out.stopped);
  out = m.feed("more");
  EXPECT_EQ(out.emit, "");
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, StopAcrossPieceBoundaries) {
  Streamed r = run({"</s>"}, {"Hel", "lo <", "/", "s> more"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "Hello ");
  // "<" and "</" are held back until they are known not to be a stop.
  EXPECT_EQ(r.emits, (std::vector<std::string>{"Hel", "lo ", "", ""}));
}

TEST(StopMatcher, FalseStartIsReleased) {
  Streamed r = run({"</s>"}, {"a<", "/b", "c"});
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.emits, (std::vector<std::string>{"a", "</b", "c"}));
  EXPECT_EQ(r.text, "a</bc");
}

TEST(StopMatcher, FlushReturnsHeldBackText) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.feed("abc</").emit, "abc");
  EXPECT_EQ(m.flush(), "</");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  EXPECT_EQ(run({"END", "STOP"}, {"xxSTOPyyEND"}).text, "xx");
  EXPECT_EQ(run({"END", "STOP"}, {"xxEN", "DyySTOP"}).text, "xx");
  // One stop string a prefix of another: the shorter completes first.
  EXPECT_EQ(run({"abc", "ab"}, {"xa", "bc"}).text, "x");
}

TEST(StopMatcher, OverlappingPrefixes) {
  // "aab" after "aaa": the first 'a' can no longer start a match, the last two can.
  Streamed r = run({"aab"}, {"a", "a", "a", "b"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emits, (std::vector<std::string>{"", "", "a", ""}));
  EXPECT_EQ(r.text, "a");

  Streamed r2 = run({"abab"}, {"ab", "aab", "ab"});
  EXPECT_TRUE(r2.stopped);
  EXPECT_EQ(r2.text, "aba");
}

TEST(StopMatcher, Utf8StopSplitInsideCharacter) {
  // "é" is C3 A9; the stop string is cut between its two bytes.
  Streamed r = run({"\xC3\xA9"}, {"caf\xC3", "\xA9!"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "caf");
}

TEST(StopMatcher, Utf8IncompleteCharacterIsHeldBack) {
  // "中" is E4 B8 AD, split over two pieces; nothing half a character leaves the matcher.
  Streamed r = run({"STOP"}, {"\xE4\xB8", "\xAD\xE6\x96\x87", "\xF0\x9F", "\x98\x80"});
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.emits, (std::vector<std::string>{"", "\xE4\xB8\xAD\xE6\x96\x87", "",
                                               "\xF0\x9F\x98\x80"}));
  // Invalid bytes are not held (they can never complete).
  Streamed bad = run({"STOP"}, {"a\xFF", "\x80"});
  EXPECT_EQ(bad.emits, (std::vector<std::string>{"a\xFF", "\x80"}));
  // An incomplete character at the very end comes out of flush().
  Streamed tail = run({"STOP"}, {"ok\xE4\xB8"});
  EXPECT_EQ(tail.emits, (std::vector<std::string>{"ok"}));
  EXPECT_EQ(tail.text, "ok\xE4\xB8");
}

TEST(StopMatcher, Utf8MultibyteStopStrings) {
  Streamed r = run({"。\n", "終わり"}, {"これは", "文です", "。", "\n次"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "これは文です");
  Streamed r2 = run({"終わり"}, {"これで終", "わ", "りです"});
  EXPECT_TRUE(r2.stopped);
  EXPECT_EQ(r2.text, "これで");
}

// Differential check against the obvious definition: output = text before the first
// occurrence of any stop string, for random texts, stop sets and random piece splits.
TEST(StopMatcher, MatchesBruteForceOnRandomStreams) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab<>";
  auto random_string = [&](size_t len) {
    std::string s;
    for (size_t i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<std::string> stops;
    const int n_stops = static_cast<int>(rng() % 3);
    for (int i = 0; i < n_stops; ++i) stops.push_back(random_string(1 + rng() % 4));
    const std::string text = random_string(rng() % 30);

    size_t first = std::string::npos;
    for (const std::string& s : stops) first = std::min(first, text.find(s));
    const std::string expected = text.substr(0, first);

    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size();) {
      const size_t len = std::min(text.size() - i, static_cast<size_t>(rng() % 5));
      pieces.push_back(text.substr(i, len));  // empty pieces are allowed too
      i += len;
    }
    Streamed r = run(stops, pieces);
    ASSERT_EQ(r.text, expected) << "text=" << text << " iter=" << iter;
    ASSERT_EQ(r.stopped, first != std::string::npos) << "text=" << text;
  }
}

}  // namespace
}  // namespace flashlm
