#include "grammar/json_schema.h"

#include "grammar/grammar.h"

#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace flashlm::grammar {
namespace {

using json = nlohmann::ordered_json;  // keeps properties in the schema's order

// Shared pieces of every JSON grammar (llama.cpp's shapes, with bounded blanks and digits).
constexpr const char* kPrimitives[][2] = {
    {"ws", R"(| " " | "\n" [ \t]{0,20})"},
    {"char", R"([^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}))"},
    {"string", R"("\"" char* "\"" ws)"},
    {"integer", R"("-"? ([0-9] | [1-9] [0-9]{0,15}) ws)"},
    {"number", R"("-"? ([0-9] | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})? ws)"},
    {"boolean", R"(("true" | "false") ws)"},
    {"null", R"("null" ws)"},
    {"value", R"(object | array | string | number | boolean | null)"},
    {"object", R"("{" ws (string ":" ws value ("," ws string ":" ws value)*)? "}" ws)"},
    {"array", R"("[" ws (value ("," ws value)*)? "]" ws)"},
};

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// One code point as GBNF source, safe inside "..." and [...].
std::string gbnf_cp(uint32_t cp) {
  const bool plain = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
                     cp == ' ' || cp == '_' || cp == ',' || cp == ':' || cp == '{' || cp == '}' || cp == '.' ||
                     cp == '(' || cp == ')' || cp == '+' || cp == '*' || cp == '!' || cp == '@' || cp == '#' ||
                     cp == '=' || cp == '/' || cp == '<' || cp == '>' || cp == '?' || cp == '|' || cp == ';';
  if (plain) return std::string(1, static_cast<char>(cp));
  char buf[16];
  if (cp < 0x100) {
    std::snprintf(buf, sizeof buf, "\\x%02X", cp);
  } else if (cp < 0x10000) {
    std::snprintf(buf, sizeof buf, "\\u%04X", cp);
  } else {
    std::snprintf(buf, sizeof buf, "\\U%08X", cp);
  }
  return buf;
}

// Bytes of valid UTF-8 text -> a GBNF literal.
std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (int k = 1; k < len && i + k < text.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    i += len;
    out += gbnf_cp(cp);
  }
  return out + "\"";
}

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// Regular expression -> GBNF expression. In JSON mode the text is the inside of a JSON
// string: quotes and backslashes are produced escaped and raw control characters never.
class RegexConverter {
 public:
  RegexConverter(std::string_view re, bool json_mode) : re_(re), json_(json_mode) {}

  Result<std::string> run() {
    bool anchored_start = false, anchored_end = false;
    std::string_view body = re_;
    if (!body.empty() && body.front() == '^') {
      anchored_start = true;
      body.remove_prefix(1);
    }
    if (!body.empty() && body.back() == '$' && (body.size() < 2 || body[body.size() - 2] != '\\')) {
      anchored_end = true;
      body.remove_suffix(1);
    }
    re_ = body;
    std::string expr;
    if (!alt(&expr)) return Status::error("pattern: " + err_ + " at offset " + std::to_string(pos_));
    if (pos_ != re_.size()) return Status::error("pattern: unexpected ')' at offset " + std::to_string(pos_));
    const std::string any = "(" + any_char() + ")*";
    return (anchored_start ? "" : any + " ") + "(" + expr + ")" + (anchored_end ? "" : " " + any);
  }

 private:
  bool fail(std::string why) {
    if (err_.empty()) err_ = std::move(why);
    return false;
  }
  bool more() const { return pos_ < re_.size(); }
  char peek() const { return more() ? re_[pos_] : '\0'; }

  std::string any_char() const { return json_ ? std::string(R"([^"\\\x00-\x1F])") : std::string(R"([^\n])"); }

  bool alt(std::string* out) {
    if (++depth_ > 100) return fail("groups nested deeper than 100");
    std::string s;
    if (!seq(&s)) return false;
    *out = s.empty() ? "\"\"" : s;
    while (peek() == '|') {
      ++pos_;
      if (!seq(&s)) return false;
      *out += " | " + (s.empty() ? std::string("\"\"") : s);
    }
    --depth_;
    return true;
  }

  bool seq(std::string* out) {
    out->clear();
    while (more() && peek() != '|' && peek() != ')') {
      std::string atom;
      if (!parse_atom(&atom)) return false;
      if (!quantifier(&atom)) return false;
      if (!out->empty()) out->push_back(' ');
      *out += atom;
    }
    return true;
  }

  bool quantifier(std::string* atom) {
    const char c = peek();
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      *atom = "(" + *atom + ")" + c;
    } else if (c == '{') {
      const size_t close = re_.find('}', pos_);
      if (close == std::string_view::npos) return fail("unterminated {m,n}");
      const std::string_view inner = re_.substr(pos_ + 1, close - pos_ - 1);
      for (char d : inner) {
        if (!(d >= '0' && d <= '9') && d != ',') return fail("bad {m,n}");
      }
      if (inner.empty() || inner.front() == ',') return fail("bad {m,n}");
      *atom = "(" + *atom + "){" + std::string(inner) + "}";
      pos_ = close + 1;
    } else {
      return true;
    }
    if (peek() == '?' || peek() == '+') ++pos_;  // lazy / possessive: same language
    return true;
  }

  bool read_cp(uint32_t* cp) {
    const auto c = static_cast<unsigned char>(re_[pos_]);
    const int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || pos_ + len > re_.size()) return fail("invalid UTF-8");
    uint32_t v = len == 1 ? c : c & (0x7F >> len);
    for (int k = 1; k < len; ++k) v = (v << 6) | (static_cast<unsigned char>(re_[pos_ + k]) & 0x3F);
    pos_ += len;
    *cp = v;
    return true;
  }

  // A class escape (\d \w \s and their negations) into ranges; false if `e` is not one.
  static bool class_escape(char e, Ranges* r, bool* negated) {
    *negated = e == 'D' || e == 'W' || e == 'S';
    switch (e) {
      case 'd': case 'D': *r = {{'0', '9'}}; return true;
      case 'w': case 'W': *r = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; return true;
      case 's': case 'S': *r = {{' ', ' '}, {'\t', '\r'}}; return true;
      default: return false;
    }
  }

  // An escaped single character (\n, \., \x41, \u00e9, ...).
  bool escaped_char(uint32_t* cp) {
    if (!more()) return fail("trailing backslash");
    const char e = re_[pos_++];
    switch (e) {
      case 'n': *cp = '\n'; return true;
      case 'r': *cp = '\r'; return true;
      case 't': *cp = '\t'; return true;
      case 'f': *cp = '\f'; return true;
      case 'v': *cp = '\v'; return true;
      case '0': *cp = 0; return true;
      case 'x': case 'u': {
        const int digits = e == 'x' ? 2 : 4;
        uint32_t v = 0;
        for (int i = 0; i < digits; ++i) {
          const char h = peek();
          const int d = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
          if (d < 0) return fail("bad \\x or \\u escape");
          v = v * 16 + static_cast<uint32_t>(d);
          ++pos_;
        }
        *cp = v;
        return true;
      }
      default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
          return fail(std::string("unsupported escape \\") + e + " (backreferences, \\b and the like)");
        }
        *cp = static_cast<unsigned char>(e);
        return true;
    }
  }

  // Ranges as a GBNF expression, in JSON mode split into what may appear raw and the
  // escaped forms of '"' and '\'.
  Result<std::string> emit_class(Ranges r, bool negated) const {
    auto text = [](const Ranges& rs, bool neg) {
      std::string s = neg ? "[^" : "[";
      for (auto [lo, hi] : rs) s += lo == hi ? gbnf_cp(lo) : gbnf_cp(lo) + "-" + gbnf_cp(hi);
      return s + "]";
    };
    if (!json_) {
      if (r.empty()) return negated ? std::string("[^\\n]") : Result<std::string>(Status::error("pattern: empty class"));
      return text(r, negated);
    }
    const Ranges forbidden = {{0x00, 0x1F}, {'"', '"'}, {'\\', '\\'}};
    if (negated) {
      r.insert(r.end(), forbidden.begin(), forbidden.end());
      return text(r, true);
    }
    auto contains = [&](uint32_t cp) {
      for (auto [lo, hi] : r) {
        if (lo <= cp && cp <= hi) return true;
      }
      return false;
    };
    std::vector<std::string> alts;
    if (contains('"')) alts.push_back(gbnf_literal("\\\""));
    if (contains('\\')) alts.push_back(gbnf_literal("\\\\"));
    Ranges kept;
    for (auto [lo, hi] : r) {  // subtract the forbidden code points
      std::vector<std::pair<uint32_t, uint32_t>> parts{{lo, hi}};
      for (auto [flo, fhi] : forbidden) {
        std::vector<std::pair<uint32_t, uint32_t>> next;
        for (auto [a, b] : parts) {
          if (b < flo || a > fhi) {
            next.push_back({a, b});
            continue;
          }
          if (a < flo) next.push_back({a, flo - 1});
          if (b > fhi) next.push_back({fhi + 1, b});
        }
        parts = std::move(next);
      }
      kept.insert(kept.end(), parts.begin(), parts.end());
    }
    if (!kept.empty()) alts.insert(alts.begin(), text(kept, false));
    if (alts.empty()) return Status::error("pattern: a class with only control characters cannot appear in JSON");
    std::string out = "(";
    for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
    return out + ")";
  }

  std::string emit_char(uint32_t cp) const {
    std::string bytes;
    if (json_ && (cp < 0x20 || cp == '"' || cp == '\\')) {
      bytes = json(std::string(1, static_cast<char>(cp))).dump();  // "\n", "\"", "\u0001", ...
      bytes = bytes.substr(1, bytes.size() - 2);
    } else {
      append_utf8(cp, &bytes);
    }
    return gbnf_literal(bytes);
  }

  bool parse_atom(std::string* out) {
    const char c = peek();
    if (c == '(') {
      ++pos_;
      if (peek() == '?') {
        if (re_.substr(pos_, 2) != "?:") return fail("lookaround and named groups are not supported");
        pos_ += 2;
      }
      std::string inner;
      if (!alt(&inner)) return false;
      if (peek() != ')') return fail("missing ')'");
      ++pos_;
      *out = "(" + inner + ")";
      return true;
    }
    if (c == '[') return parse_class(out);
    if (c == '.') {
      ++pos_;
      *out = any_char();
      return true;
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') return fail("a quantifier with nothing before it");
    if (c == '^' || c == '$') return fail("anchors are supported only at the ends");
    uint32_t cp = 0;
    if (c == '\\') {
      ++pos_;
      Ranges r;
      bool neg = false;
      if (more() && class_escape(re_[pos_], &r, &neg)) {
        ++pos_;
        Result<std::string> cls = emit_class(r, neg);
        if (!cls) return fail(cls.message());
        *out = *cls;
        return true;
      }
      if (!escaped_char(&cp)) return false;
    } else if (!read_cp(&cp)) {
      return false;
    }
    *out = emit_char(cp);
    return true;
  }

  bool parse_class(std::string* out) {
    ++pos_;  // [
    bool negated = false;
    if (peek() == '^') {
      negated = true;
      ++pos_;
    }
    Ranges r;
    bool first = true;
    while (more() && (peek() != ']' || first)) {
      first = false;
      uint32_t lo = 0;
      if (peek() == '\\') {
        ++pos_;
        Ranges sub;
        bool neg = false;
        if (more() && class_escape(re_[pos_], &sub, &neg)) {
          ++pos_;
          if (neg) return fail("negated class escapes inside [...] are not supported");
          r.insert(r.end(), sub.begin(), sub.end());
          continue;
        }
        if (!escaped_char(&lo)) return false;
      } else if (!read_cp(&lo)) {
        return false;
      }
      uint32_t hi = lo;
      if (peek() == '-' && pos_ + 1 < re_.size() && re_[pos_ + 1] != ']') {
        ++pos_;
        if (peek() == '\\') {
          ++pos_;
          if (!escaped_char(&hi)) return false;
        } else if (!read_cp(&hi)) {
          return false;
        }
        if (hi < lo) return fail("class range with its ends reversed");
      }
      r.push_back({lo, hi});
    }
    if (peek() != ']') return fail("unterminated [");
    ++pos_;
    Result<std::string> cls = emit_class(std::move(r), negated);
    if (!cls) return fail(cls.message());
    *out = *cls;
    return true;
  }

  std::string_view re_;
  bool json_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::string err_;
};

// Assertions the grammar cannot enforce: a schema using them is refused (the output
// would not be guaranteed to validate), or, for non-strict tool parameters, relaxed.
const std::set<std::string>& unenforceable_keywords() {
  static const std::set<std::string> k = {
      "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "not", "if", "then", "else",
      "uniqueItems", "contains", "minContains", "maxContains", "patternProperties", "propertyNames",
      "dependentRequired", "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems",
      "minProperties", "maxProperties"};
  return k;
}

void drop_unenforceable(json* s) {
  if (!s->is_object()) return;
  for (const std::string& k : unenforceable_keywords()) s->erase(k);
  for (const char* map_key : {"properties", "$defs", "definitions"}) {
    if (auto it = s->find(map_key); it != s->end() && it->is_object()) {
      for (auto& sub : *it) drop_unenforceable(&sub);
    }
  }
  for (const char* list_key : {"prefixItems", "anyOf", "oneOf", "allOf"}) {
    if (auto it = s->find(list_key); it != s->end() && it->is_array()) {
      for (auto& sub : *it) drop_unenforceable(&sub);
    }
  }
  for (const char* one_key : {"items", "additionalProperties"}) {
    if (auto it = s->find(one_key); it != s->end()) drop_unenforceable(&*it);
  }
}

class SchemaConverter {
 public:
  explicit SchemaConverter(const json& root) : root_(root) {}

  Result<std::string> run() {
    std::string expr;
    if (!visit(root_, "root", 0, &expr)) return Status::error("json_schema: " + err_);
    std::string out = "root ::= " + expr + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    for (const auto& p : kPrimitives) {
      if (used_.count(p[0]) != 0) out += std::string(p[0]) + " ::= " + p[1] + "\n";
    }
    return out;
  }

 private:
  bool fail(std::string why) {
    if (err_.empty()) err_ = std::move(why);
    return false;
  }

  // A primitive rule by name; value/object/array pull in what they use.
  std::string prim(const std::string& name) {
    if (used_.insert(name).second) {
      if (name == "string") prim("char");
      if (name == "string" || name == "integer" || name == "number" || name == "boolean" || name == "null") prim("ws");
      if (name == "value" || name == "object" || name == "array") {
        for (const char* p : {"object", "array", "string", "number", "boolean", "null", "value", "ws"}) prim(p);
      }
    }
    return name;
  }

  std::string new_rule(const std::string& hint, const std::string& body) {
    std::string base;
    for (char c : hint) base.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
    if (base.empty() || base.size() > 40) base = "r";
    std::string name = base;
    for (int i = 1; rules_.count(name) != 0 || used_.count(name) != 0 || name == "root"; ++i) {
      name = base + "-" + std::to_string(i);
    }
    rules_[name] = body;
    return name;
  }

  bool check_keywords(const json& s) {
    const std::set<std::string>& unsupported = unenforceable_keywords();
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (unsupported.count(it.key()) != 0) return fail("the keyword '" + it.key() + "' is not supported");
    }
    return true;
  }

  bool literal_alternatives(const json& values, std::string* out) {
    std::string alts;
    for (const json& v : values) {
      alts += (alts.empty() ? "" : " | ") + gbnf_literal(v.dump());
    }
    if (alts.empty()) return fail("'enum' must not be empty");
    *out = "(" + alts + ") " + prim("ws");
    return true;
  }

  bool visit(const json& s, const std::string& hint, int depth, std::string* out) {
    if (depth > 64) return fail("schemas nested deeper than 64");
    if (s.is_boolean()) {
      if (!s.get<bool>()) return fail("the schema 'false' matches nothing");
      *out = prim("value");
      return true;
    }
    if (!s.is_object()) return fail("a schema must be an object or a boolean");
    if (!check_keywords(s)) return false;
    if (auto r = s.find("$ref"); r != s.end()) return visit_ref(*r, depth, out);
    if (auto c = s.find("const"); c != s.end()) return literal_alternatives(json::array({*c}), out);
    if (auto e = s.find("enum"); e != s.end()) {
      if (!e->is_array()) return fail("'enum' must be an array");
      return literal_alternatives(*e, out);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (auto a = s.find(key); a != s.end()) {
        if (!a->is_array() || a->empty()) return fail(std::string("'") + key + "' must be a non-empty array");
        std::string alts;
        for (size_t i = 0; i < a->size(); ++i) {
          std::string sub;
          if (!visit((*a)[i], hint + "-" + std::to_string(i), depth + 1, &sub)) return false;
          alts += (i ? " | " : "") + sub;
        }
        *out = new_rule(hint, alts);
        return true;
      }
    }
    if (auto a = s.find("allOf"); a != s.end()) {
      if (!a->is_array() || a->size() != 1) return fail("'allOf' is supported with exactly one schema");
      return visit((*a)[0], hint, depth + 1, out);
    }
    auto t = s.find("type");
    if (t == s.end()) {
      if (s.contains("properties")) return visit_object(s, hint, depth, out);
      if (s.contains("items") || s.contains("prefixItems")) return visit_array(s, hint, depth, out);
      *out = prim("value");
      return true;
    }
    if (t->is_array()) {
      if (t->empty()) return fail("'type' must not be an empty array");
      std::string alts;
      for (size_t i = 0; i < t->size(); ++i) {
        if (!(*t)[i].is_string()) return fail("'type' entries must be strings");
        std::string sub;
        if (!visit_type((*t)[i].get<std::string>(), s, hint, depth, &sub)) return false;
        alts += (i ? " | " : "") + sub;
      }
      *out = new_rule(hint, alts);
      return true;
    }
    if (!t->is_string()) return fail("'type' must be a string or an array of strings");
    return visit_type(t->get<std::string>(), s, hint, depth, out);
  }

  bool visit_type(const std::string& type, const json& s, const std::string& hint, int depth, std::string* out) {
    if (type == "object") return visit_object(s, hint, depth, out);
    if (type == "array") return visit_array(s, hint, depth, out);
    if (type == "string") return visit_string(s, hint, out);
    if (type == "integer" || type == "number" || type == "boolean" || type == "null") {
      *out = prim(type);
      return true;
    }
    return fail("unknown type '" + type + "'");
  }

  bool get_count(const json& s, const char* key, uint64_t* out) {
    auto it = s.find(key);
    if (it == s.end()) return true;
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
      return fail(std::string("'") + key + "' must be a non-negative integer");
    }
    *out = it->get<uint64_t>();
    if (*out > kMaxRepeat) return fail(std::string("'") + key + "' above " + std::to_string(kMaxRepeat));
    return true;
  }

  static std::string bounds(uint64_t min, uint64_t max) {
    if (max == UINT64_MAX) return "{" + std::to_string(min) + ",}";
    return "{" + std::to_string(min) + "," + std::to_string(max) + "}";
  }

  bool visit_string(const json& s, const std::string& hint, std::string* out) {
    uint64_t min = 0, max = UINT64_MAX;
    if (!get_count(s, "minLength", &min) || !get_count(s, "maxLength", &max)) return false;
    if (max < min) return fail("'maxLength' below 'minLength'");
    if (auto p = s.find("pattern"); p != s.end()) {
      if (!p->is_string()) return fail("'pattern' must be a string");
      if (min != 0 || max != UINT64_MAX) return fail("'pattern' together with minLength/maxLength is not supported");
      Result<std::string> body = RegexConverter(p->get<std::string>(), true).run();
      if (!body) return fail(body.message());
      *out = new_rule(hint, "\"\\\"\" " + *body + " \"\\\"\" " + prim("ws"));
      return true;
    }
    if (min == 0 && max == UINT64_MAX) {
      *out = prim("string");
      return true;
    }
    prim("char");
    *out = new_rule(hint, "\"\\\"\" char" + bounds(min, max) + " \"\\\"\" " + prim("ws"));
    return true;
  }

  bool visit_array(const json& s, const std::string& hint, int depth, std::string* out) {
    uint64_t min = 0, max = UINT64_MAX;
    if (!get_count(s, "minItems", &min) || !get_count(s, "maxItems", &max)) return false;
    if (max < min) return fail("'maxItems' below 'minItems'");
    const std::string ws = prim("ws");
    if (auto pi = s.find("prefixItems"); pi != s.end()) {
      if (!pi->is_array()) return fail("'prefixItems' must be an array");
      if (s.contains("items") && !(s["items"].is_boolean() && !s["items"].get<bool>())) {
        return fail("'prefixItems' with more 'items' is not supported (use items: false)");
      }
      std::string body = "\"[\" " + ws;
      for (size_t i = 0; i < pi->size(); ++i) {
        std::string sub;
        if (!visit((*pi)[i], hint + "-" + std::to_string(i), depth + 1, &sub)) return false;
        body += (i ? " \",\" " + ws + " " : " ") + sub;
      }
      *out = new_rule(hint, body + " \"]\" " + ws);
      return true;
    }
    std::string item = prim("value");
    if (auto it = s.find("items"); it != s.end()) {
      if (!visit(*it, hint + "-item", depth + 1, &item)) return false;
    }
    std::string body = "\"[\" " + ws + " ";
    if (max == 0) {
      body += "\"]\" " + ws;
    } else {
      const std::string more = "(\",\" " + ws + " " + item + ")";
      const uint64_t more_min = min > 0 ? min - 1 : 0;
      const uint64_t more_max = max == UINT64_MAX ? UINT64_MAX : max - 1;
      std::string list = item + " " + more + bounds(more_min, more_max);
      body += (min == 0 ? "(" + list + ")?" : list) + " \"]\" " + ws;
    }
    *out = new_rule(hint, body);
    return true;
  }

  bool visit_object(const json& s, const std::string& hint, int depth, std::string* out) {
    if (auto ap = s.find("additionalProperties"); ap != s.end() && !ap->is_boolean()) {
      return fail("'additionalProperties' as a schema is not supported (true or false are)");
    }
    auto props = s.find("properties");
    if (props == s.end()) {
      *out = prim("object");
      return true;
    }
    if (!props->is_object()) return fail("'properties' must be an object");
    std::set<std::string> required;
    if (auto r = s.find("required"); r != s.end()) {
      if (!r->is_array()) return fail("'required' must be an array");
      for (const json& k : *r) {
        if (!k.is_string()) return fail("'required' entries must be strings");
        if (!props->contains(k.get<std::string>())) {
          return fail("required property '" + k.get<std::string>() + "' is not in 'properties'");
        }
        required.insert(k.get<std::string>());
      }
    }
    const std::string ws = prim("ws");
    std::vector<std::pair<std::string, bool>> kvs;  // rule text of "key": value, required
    for (auto it = props->begin(); it != props->end(); ++it) {
      std::string value;
      if (!visit(it.value(), hint + "-" + it.key(), depth + 1, &value)) return false;
      kvs.push_back({gbnf_literal(json(it.key()).dump()) + " " + ws + " \":\" " + ws + " " + value,
                     required.count(it.key()) != 0});
    }
    // Properties in the order given; the first present one has no comma before it.
    const std::string sep = "\",\" " + ws + " ";
    std::string body = "\"{\" " + ws + " ";
    size_t first_req = kvs.size();
    for (size_t i = 0; i < kvs.size(); ++i) {
      if (kvs[i].second) {
        first_req = i;
        break;
      }
    }
    if (first_req < kvs.size()) {
      for (size_t i = 0; i < first_req; ++i) body += "(" + kvs[i].first + " " + sep + ")? ";
      body += kvs[first_req].first + " ";
      for (size_t i = first_req + 1; i < kvs.size(); ++i) {
        body += kvs[i].second ? sep + kvs[i].first + " " : "(" + sep + kvs[i].first + ")? ";
      }
    } else if (!kvs.empty()) {
      // All optional: empty, or some property i first and any later ones after it.
      std::string alts;
      for (size_t i = 0; i < kvs.size(); ++i) {
        std::string a = kvs[i].first;
        for (size_t j = i + 1; j < kvs.size(); ++j) a += " (" + sep + kvs[j].first + ")?";
        alts += (i ? " | " : "") + a;
      }
      body += "(" + alts + ")? ";
    }
    *out = new_rule(hint, body + "\"}\" " + ws);
    return true;
  }

  bool visit_ref(const json& ref, int depth, std::string* out) {
    if (!ref.is_string()) return fail("'$ref' must be a string");
    const std::string r = ref.get<std::string>();
    if (auto it = refs_.find(r); it != refs_.end()) {
      *out = it->second;
      return true;
    }
    const json* target = nullptr;
    std::string name;
    if (r == "#") {
      target = &root_;
      name = "root-ref";
    } else {
      for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
        const std::string p = prefix;
        if (r.rfind(p, 0) != 0) continue;
        const std::string key = r.substr(p.size());
        auto defs = root_.is_object() ? root_.find(p.substr(2, p.size() - 3)) : root_.end();
        if (defs != root_.end() && defs->is_object()) {
          if (auto d = defs->find(key); d != defs->end()) target = &*d;
        }
        name = key;
      }
    }
    if (target == nullptr) return fail("'$ref' '" + r + "' does not name a definition of this schema");
    // The rule is named before its body is built, so recursive references find it.
    const std::string rule = new_rule("ref-" + name, "");
    refs_[r] = rule;
    std::string body;
    if (!visit(*target, rule, depth + 1, &body)) return false;
    rules_[rule] = body;
    *out = rule;
    return true;
  }

  const json& root_;
  std::map<std::string, std::string> rules_;
  std::map<std::string, std::string> refs_;
  std::set<std::string> used_;
  std::string err_;
};

}  // namespace

Result<std::string> json_schema_to_gbnf(const json& schema) {
  if (!schema.is_object() && !schema.is_boolean()) return Status::error("json_schema: the schema must be an object");
  return SchemaConverter(schema).run();
}

json drop_unenforceable_keywords(const json& schema) {
  json out = schema;
  drop_unenforceable(&out);
  return out;
}

std::string json_object_gbnf() {
  std::string out = "root ::= object\n";
  for (const auto& p : kPrimitives) out += std::string(p[0]) + " ::= " + p[1] + "\n";
  return out;
}

Result<std::string> regex_to_gbnf(std::string_view regex) {
  Result<std::string> body = RegexConverter(regex, false).run();
  if (!body) return body.status();
  return "root ::= " + *body + "\n";
}

}  // namespace flashlm::grammar
