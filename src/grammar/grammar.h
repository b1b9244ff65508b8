// A context-free grammar over Unicode code points, in llama.cpp's GBNF notation, compiled
// into flat element arrays that the matcher (grammar/matcher.h) walks with stacks.
//
// GBNF, as llama.cpp's grammars/README describes it:
//   root  ::= "{" ws pair ("," ws pair)* "}"     # rules; `root` is where matching starts
//   pair  ::= [a-z]+ ":" ws [0-9]{1,3}           # literals, classes, rule names
//   ws    ::= [ \t\n]*                           # *, +, ?, {m}, {m,}, {m,n}; ( ) groups; .
// Escapes \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH; # starts a comment. A rule ends at
// the end of its line unless a group or the `::=` is still open.
//
// Every group and repetition becomes a rule of its own, so a rule is a list of
// alternatives of plain elements (code-point sets and rule references). Grammars that
// would make the matcher loop (left recursion, directly or through rules that can match
// nothing) or grow without bound are refused at compile time with an error naming the rule.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace flashlm::grammar {

enum class Op : uint8_t {
  kEnd,         // end of a rule's last alternative
  kAlt,         // end of an alternative; the next one starts after it
  kRef,         // value: the index of a rule
  kChar,        // value: a code point; starts a set (kRangeUpper / kCharAlt may follow)
  kCharNot,     // as kChar, for a negated set [^...]
  kRangeUpper,  // value: inclusive upper end of the range the previous element started
  kCharAlt,     // value: one more code point (or range start) in the same set
  kAny,         // any code point (.)
};

struct Elem {
  Op op;
  uint32_t value;
};

// Sizes past which a grammar is refused: the text, the compiled elements (repetition
// counts multiply), and the largest repetition count.
inline constexpr size_t kMaxGrammarBytes = 1u << 20;
inline constexpr size_t kMaxElements = 1u << 20;
inline constexpr uint32_t kMaxRepeat = 1000;

struct Grammar {
  std::vector<std::vector<Elem>> rules;  // each: alternatives ending in kAlt, the last in kEnd
  std::vector<std::string> names;        // rule names, for errors ("root", "item_3", ...)
  uint32_t root = 0;

  // True when a set element at `set` (kChar/kCharNot/kAny) matches the code point.
  static bool set_matches(const Elem* set, uint32_t cp);
  // True when some code point in [lo, hi] could match: used for a token that ends inside a
  // multi-byte UTF-8 character. May say yes too often for negated sets, never too rarely.
  static bool set_may_match(const Elem* set, uint32_t lo, uint32_t hi);
  // The element after the set that starts at `set`.
  static const Elem* after_set(const Elem* set);
};

// Parses GBNF text; `root` names the start rule. Errors say where (line:column) and why.
Result<Grammar> parse_gbnf(std::string_view text, std::string_view root = "root");

}  // namespace flashlm::grammar
