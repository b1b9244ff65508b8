#include "grammar/grammar.h"

#include <unordered_map>

namespace flashlm::grammar {

bool Grammar::set_matches(const Elem* set, uint32_t cp) {
  if (set->op == Op::kAny) return true;
  const bool negated = set->op == Op::kCharNot;
  bool found = false;
  const Elem* e = set;
  do {
    if (e[1].op == Op::kRangeUpper) {
      found = found || (e->value <= cp && cp <= e[1].value);
      e += 2;
    } else {
      found = found || e->value == cp;
      e += 1;
    }
  } while (e->op == Op::kCharAlt);
  return found != negated;
}

bool Grammar::set_may_match(const Elem* set, uint32_t lo, uint32_t hi) {
  if (set->op != Op::kChar) return true;  // . and negated sets: conservatively yes
  const Elem* e = set;
  do {
    const uint32_t a = e->value;
    const uint32_t b = e[1].op == Op::kRangeUpper ? e[1].value : a;
    if (a <= hi && lo <= b) return true;
    e += e[1].op == Op::kRangeUpper ? 2 : 1;
  } while (e->op == Op::kCharAlt);
  return false;
}

const Elem* Grammar::after_set(const Elem* set) {
  if (set->op == Op::kAny) return set + 1;
  const Elem* e = set;
  do {
    e += e[1].op == Op::kRangeUpper ? 2 : 1;
  } while (e->op == Op::kCharAlt);
  return e;
}

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  Result<Grammar> run(std::string_view root) {
    if (src_.size() > kMaxGrammarBytes) return Status::error("grammar: larger than 1 MiB");
    skip_space(true);
    while (pos_ < src_.size()) {
      if (!parse_rule()) return Status::error("grammar: " + where() + ": " + err_);
      skip_space(true);
    }
    for (size_t i = 0; i < g_.rules.size(); ++i) {
      if (!defined_[i]) return Status::error("grammar: rule '" + g_.names[i] + "' is used but never defined");
    }
    auto it = ids_.find(std::string(root));
    if (it == ids_.end()) return Status::error("grammar: no rule named '" + std::string(root) + "' to start from");
    g_.root = it->second;
    if (Status st = check_left_recursion(); !st) return st;
    return std::move(g_);
  }

 private:
  std::string where() const {
    int line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(col);
  }
  bool fail(std::string why) {
    if (err_.empty()) err_ = std::move(why);
    return false;
  }
  bool at_end() const { return pos_ >= src_.size(); }
  char peek(size_t k = 0) const { return pos_ + k < src_.size() ? src_[pos_ + k] : '\0'; }

  // Spaces, tabs, comments; newlines too when `newlines` (inside a group, after ::=).
  void skip_space(bool newlines) {
    while (!at_end()) {
      const char c = src_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && src_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  uint32_t rule_id(const std::string& name) {
    auto [it, added] = ids_.emplace(name, static_cast<uint32_t>(g_.rules.size()));
    if (added) {
      g_.rules.emplace_back();
      g_.names.push_back(name);
      defined_.push_back(false);
    }
    return it->second;
  }
  uint32_t new_rule(const std::string& base) {
    std::string name;
    do {
      name = base + "_" + std::to_string(++generated_);
    } while (ids_.count(name) != 0);
    return rule_id(name);
  }
  bool set_rule(uint32_t id, std::vector<Elem> elems) {
    n_elems_ += elems.size();
    if (n_elems_ > kMaxElements) return fail("the grammar is too large once repetitions are expanded");
    g_.rules[id] = std::move(elems);
    defined_[id] = true;
    return true;
  }

  bool parse_name(std::string* out) {
    const size_t start = pos_;
    while (!at_end() && is_name_char(src_[pos_])) ++pos_;
    if (pos_ == start) return fail("expected a rule name");
    out->assign(src_.substr(start, pos_ - start));
    return true;
  }

  bool parse_rule() {
    std::string name;
    if (!parse_name(&name)) return false;
    skip_space(false);
    if (src_.substr(pos_, 3) != "::=") return fail("expected '::=' after rule name '" + name + "'");
    pos_ += 3;
    skip_space(true);
    const uint32_t id = rule_id(name);
    if (defined_[id]) return fail("rule '" + name + "' is defined twice");
    std::vector<Elem> elems;
    if (!parse_alternates(name, false, &elems)) return false;
    if (!at_end() && peek() != '\n') return fail(std::string("unexpected '") + peek() + "'");
    return set_rule(id, std::move(elems));
  }

  bool parse_alternates(const std::string& rule, bool nested, std::vector<Elem>* out) {
    if (++depth_ > 200) return fail("groups nested deeper than 200");
    if (!parse_sequence(rule, nested, out)) return false;
    while (peek() == '|') {
      ++pos_;
      skip_space(true);
      out->push_back({Op::kAlt, 0});
      if (!parse_sequence(rule, nested, out)) return false;
    }
    out->push_back({Op::kEnd, 0});
    --depth_;
    return true;
  }

  // One code point of a literal or class, escapes decoded. UTF-8 in the source is decoded.
  bool parse_char(uint32_t* cp) {
    if (at_end()) return fail("unexpected end of grammar");
    const auto c = static_cast<unsigned char>(src_[pos_]);
    if (c == '\\') {
      const char e = peek(1);
      pos_ += 2;
      switch (e) {
        case 'n': *cp = '\n'; return true;
        case 'r': *cp = '\r'; return true;
        case 't': *cp = '\t'; return true;
        case '\\': case '"': case '[': case ']': case '-': case '/': case '\'': case '^':
          *cp = static_cast<unsigned char>(e);
          return true;
        case 'x': return parse_hex(2, cp);
        case 'u': return parse_hex(4, cp);
        case 'U': return parse_hex(8, cp);
        default: return fail(std::string("unknown escape '\\") + e + "'");
      }
    }
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || pos_ + len > src_.size()) return fail("invalid UTF-8 in the grammar");
    uint32_t v = len == 1 ? c : c & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(src_[pos_ + k]);
      if ((cc & 0xC0) != 0x80) return fail("invalid UTF-8 in the grammar");
      v = (v << 6) | (cc & 0x3F);
    }
    pos_ += len;
    *cp = v;
    return true;
  }
  bool parse_hex(int digits, uint32_t* cp) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char h = peek();
      int d = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
      if (d < 0) return fail("expected " + std::to_string(digits) + " hex digits in an escape");
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    if (v > 0x10FFFF) return fail("code point past U+10FFFF");
    *cp = v;
    return true;
  }

  bool parse_uint(uint32_t* out) {
    const size_t start = pos_;
    uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<uint64_t>(peek() - '0');
      if (v > kMaxRepeat) return fail("repetition count above " + std::to_string(kMaxRepeat));
      ++pos_;
    }
    if (pos_ == start) return fail("expected a number in {m,n}");
    *out = static_cast<uint32_t>(v);
    return true;
  }

  // Replaces out[start, end) (one symbol) by min..max copies; max == UINT32_MAX: unbounded.
  bool repeat(const std::string& rule, size_t start, uint32_t min, uint32_t max, std::vector<Elem>* out) {
    if (start == out->size()) return fail("a repetition operator with nothing before it");
    if (max < min) return fail("{m,n} with n < m");
    const std::vector<Elem> sym(out->begin() + static_cast<std::ptrdiff_t>(start), out->end());
    out->resize(start);
    if (static_cast<uint64_t>(sym.size()) * (max == UINT32_MAX ? min + 1 : max) > kMaxElements) {
      return fail("the grammar is too large once repetitions are expanded");
    }
    for (uint32_t i = 0; i < min; ++i) out->insert(out->end(), sym.begin(), sym.end());
    if (max == UINT32_MAX) {  // r ::= sym r |
      const uint32_t r = new_rule(rule);
      std::vector<Elem> body(sym);
      body.push_back({Op::kRef, r});
      body.push_back({Op::kAlt, 0});
      body.push_back({Op::kEnd, 0});
      if (!set_rule(r, std::move(body))) return false;
      out->push_back({Op::kRef, r});
      return true;
    }
    // (sym (sym (...)?)?)?: a chain of max - min optional rules, built from the inside out.
    uint32_t next = UINT32_MAX;
    for (uint32_t i = min; i < max; ++i) {
      const uint32_t r = new_rule(rule);
      std::vector<Elem> body(sym);
      if (next != UINT32_MAX) body.push_back({Op::kRef, next});
      body.push_back({Op::kAlt, 0});
      body.push_back({Op::kEnd, 0});
      if (!set_rule(r, std::move(body))) return false;
      next = r;
    }
    if (next != UINT32_MAX) out->push_back({Op::kRef, next});
    return true;
  }

  bool parse_sequence(const std::string& rule, bool nested, std::vector<Elem>* out) {
    size_t last = out->size();  // where the last symbol starts
    while (!at_end()) {
      const char c = peek();
      if (c == '"') {
        ++pos_;
        last = out->size();
        while (peek() != '"') {
          if (at_end() || peek() == '\n') return fail("unterminated string literal");
          uint32_t cp = 0;
          if (!parse_char(&cp)) return false;
          out->push_back({Op::kChar, cp});
        }
        ++pos_;
      } else if (c == '[') {
        ++pos_;
        last = out->size();
        Op first = Op::kChar;
        if (peek() == '^') {
          ++pos_;
          first = Op::kCharNot;
        }
        bool any = false;
        while (peek() != ']') {
          if (at_end() || peek() == '\n') return fail("unterminated character class");
          uint32_t cp = 0;
          if (!parse_char(&cp)) return false;
          out->push_back({any ? Op::kCharAlt : first, cp});
          any = true;
          if (peek() == '-' && peek(1) != ']' && peek(1) != '\0') {
            ++pos_;
            uint32_t hi = 0;
            if (!parse_char(&hi)) return false;
            if (hi < cp) return fail("character range with its ends reversed");
            out->push_back({Op::kRangeUpper, hi});
          }
        }
        ++pos_;
        if (!any) return fail("empty character class");
      } else if (c == '.') {
        ++pos_;
        last = out->size();
        out->push_back({Op::kAny, 0});
      } else if (is_name_char(c)) {
        std::string name;
        if (!parse_name(&name)) return false;
        last = out->size();
        out->push_back({Op::kRef, rule_id(name)});
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        const uint32_t sub = new_rule(rule);
        std::vector<Elem> body;
        if (!parse_alternates(rule, true, &body)) return false;
        if (peek() != ')') return fail("expected ')'");
        ++pos_;
        if (!set_rule(sub, std::move(body))) return false;
        last = out->size();
        out->push_back({Op::kRef, sub});
      } else if (c == '*' || c == '+' || c == '?') {
        ++pos_;
        const uint32_t min = c == '+' ? 1 : 0;
        const uint32_t max = c == '?' ? 1 : UINT32_MAX;
        if (!repeat(rule, last, min, max, out)) return false;
      } else if (c == '{') {
        ++pos_;
        skip_space(nested);
        uint32_t min = 0, max = 0;
        if (!parse_uint(&min)) return false;
        skip_space(nested);
        max = min;
        if (peek() == ',') {
          ++pos_;
          skip_space(nested);
          max = UINT32_MAX;
          if (peek() != '}' && !parse_uint(&max)) return false;
          skip_space(nested);
        }
        if (peek() != '}') return fail("expected '}'");
        ++pos_;
        if (!repeat(rule, last, min, max, out)) return false;
      } else {
        break;
      }
      skip_space(nested);
    }
    return true;
  }

  // Left recursion (a rule reachable from itself without consuming a character) makes
  // stack expansion loop; it is refused here, naming a rule on the cycle.
  Status check_left_recursion() const {
    const size_t n = g_.rules.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        bool alt_nullable = true, any = false;
        for (const Elem& e : g_.rules[r]) {
          if (e.op == Op::kAlt || e.op == Op::kEnd) {
            any = any || alt_nullable;
            alt_nullable = true;
            continue;
          }
          if (e.op == Op::kRef) {
            alt_nullable = alt_nullable && nullable[e.value];
          } else if (e.op != Op::kRangeUpper && e.op != Op::kCharAlt) {
            alt_nullable = false;
          }
        }
        if (any) {
          nullable[r] = true;
          changed = true;
        }
      }
    }
    // Edges r -> s when an alternative of r can start with s.
    std::vector<std::vector<uint32_t>> first(n);
    for (size_t r = 0; r < n; ++r) {
      bool open = true;  // still at the start of the alternative (only nullables seen)
      for (const Elem& e : g_.rules[r]) {
        if (e.op == Op::kAlt || e.op == Op::kEnd) {
          open = true;
        } else if (open && e.op == Op::kRef) {
          first[r].push_back(e.value);
          open = nullable[e.value];
        } else if (e.op != Op::kRangeUpper && e.op != Op::kCharAlt) {
          open = false;
        }
      }
    }
    // Iterative DFS (generated chains can be thousands of rules long).
    std::vector<uint8_t> color(n, 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::pair<uint32_t, size_t>> path;
    for (uint32_t s = 0; s < n; ++s) {
      if (color[s] != 0) continue;
      path.push_back({s, 0});
      color[s] = 1;
      while (!path.empty()) {
        auto& [r, i] = path.back();
        if (i == first[r].size()) {
          color[r] = 2;
          path.pop_back();
          continue;
        }
        const uint32_t t = first[r][i++];
        if (color[t] == 1) {
          return Status::error("grammar: rule '" + g_.names[t] +
                               "' is left-recursive (it can reach itself before matching a character)");
        }
        if (color[t] == 0) {
          color[t] = 1;
          path.push_back({t, 0});
        }
      }
    }
    return Status::ok();
  }

  std::string_view src_;
  size_t pos_ = 0;
  Grammar g_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<bool> defined_;
  size_t n_elems_ = 0;
  int generated_ = 0;
  int depth_ = 0;
  std::string err_;
};

}  // namespace

Result<Grammar> parse_gbnf(std::string_view text, std::string_view root) { return Parser(text).run(root); }

}  // namespace flashlm::grammar
