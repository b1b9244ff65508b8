#include "chat/lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "chat/value.h"

namespace flashlm::chat {

const char* token_type_name(TokenType t) {
  switch (t) {
    case TokenType::kText: return "text";
    case TokenType::kVarBegin: return "'{{'";
    case TokenType::kVarEnd: return "'}}'";
    case TokenType::kBlockBegin: return "'{%'";
    case TokenType::kBlockEnd: return "'%}'";
    case TokenType::kName: return "name";
    case TokenType::kString: return "string";
    case TokenType::kInt: return "integer";
    case TokenType::kFloat: return "float";
    case TokenType::kOperator: return "operator";
    case TokenType::kEof: return "end of template";
  }
  return "?";
}

namespace {

// Python's str.isspace() over ASCII, which Jinja's stripping rules use.
bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f'); }

class Lexer {
 public:
  Lexer(std::string src, const LexOptions& opt) : src_(std::move(src)), opt_(opt) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) {
      size_t tag = find_tag(pos);
      std::string text = src_.substr(pos, tag - pos);
      if (tag == src_.size()) {
        emit_text(std::move(text), pos);
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      bool at_line_start = pos == 0 || src_[pos - 1] == '\n';
      if (sign == '-') {
        size_t end = text.size();
        while (end > 0 && is_space(text[end - 1])) --end;
        text.resize(end);
      } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || at_line_start) {
          bool blank = l_pos < text.size() &&
                       std::all_of(text.begin() + static_cast<long>(l_pos), text.end(), is_space);
          if (blank) text.resize(l_pos);
        }
      }
      emit_text(std::move(text), pos);
      size_t body = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') {
        pos = lex_comment(tag, body);
      } else if (kind == '%' && is_raw_start(body)) {
        pos = lex_raw(tag, body);
      } else {
        pos = lex_tag(tag, body, kind == '%');
      }
    }
    tokens_.push_back(Token{TokenType::kEof, "", line_of(src_.size()), col_of(src_.size())});
    return std::move(tokens_);
  }

 private:
  int line_of(size_t off) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off);
    return static_cast<int>(it - line_starts_.begin());
  }
  int col_of(size_t off) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off);
    return static_cast<int>(off - *(it - 1)) + 1;
  }
  [[noreturn]] void error(const std::string& msg, size_t off) const { fail(msg, line_of(off), col_of(off)); }

  void push(TokenType t, std::string v, size_t off) {
    tokens_.push_back(Token{t, std::move(v), line_of(off), col_of(off)});
  }
  void emit_text(std::string text, size_t off) {
    if (!text.empty()) push(TokenType::kText, std::move(text), off);
  }

  size_t find_tag(size_t pos) const {
    while (true) {
      size_t p = src_.find('{', pos);
      if (p == std::string::npos || p + 1 >= src_.size()) return src_.size();
      char c = src_[p + 1];
      if (c == '{' || c == '%' || c == '#') return p;
      pos = p + 1;
    }
  }

  // After a closing tag: `-` strips all following whitespace; otherwise trim_blocks
  // drops a single newline after block and comment tags unless `+` asked to keep it.
  size_t after_tag_end(size_t pos, char sign, bool is_block_or_comment) const {
    if (sign == '-') {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
    } else if (sign != '+' && is_block_or_comment && opt_.trim_blocks && pos < src_.size() && src_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  size_t lex_comment(size_t tag, size_t body) {
    size_t end = src_.find("#}", body);
    if (end == std::string::npos) error("unclosed comment: missing '#}'", tag);
    char sign = end > body && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    return after_tag_end(end + 2, sign, true);
  }

  static bool word_at(const std::string& s, size_t p, const char* w) {
    size_t n = std::strlen(w);
    if (s.compare(p, n, w) != 0) return false;
    return p + n >= s.size() || !(std::isalnum(static_cast<unsigned char>(s[p + n])) || s[p + n] == '_');
  }

  bool is_raw_start(size_t body) const {
    size_t p = body;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (!word_at(src_, p, "raw")) return false;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    return src_.compare(p, 2, "%}") == 0;
  }

  // {% raw %}...{% endraw %}: the body is emitted verbatim.
  size_t lex_raw(size_t tag, size_t body) {
    size_t open_end = src_.find("%}", body);
    char open_sign = src_[open_end - 1];
    size_t content = after_tag_end(open_end + 2, open_sign == '-' || open_sign == '+' ? open_sign : '\0', true);
    size_t search = content;
    while (true) {
      size_t p = src_.find("{%", search);
      if (p == std::string::npos) error("unclosed {% raw %} block: missing '{% endraw %}'", tag);
      size_t q = p + 2;
      char sign = src_[q] == '-' || src_[q] == '+' ? src_[q] : '\0';
      if (sign) ++q;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (!word_at(src_, q, "endraw")) {
        search = p + 2;
        continue;
      }
      q += 6;
      while (q < src_.size() && is_space(src_[q])) ++q;
      char end_sign = '\0';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) error("malformed {% endraw %} tag", p);
      std::string text = src_.substr(content, p - content);
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      }
      emit_text(std::move(text), content);
      return after_tag_end(q + 2, end_sign, true);
    }
  }

  size_t lex_tag(size_t tag, size_t pos, bool block) {
    push(block ? TokenType::kBlockBegin : TokenType::kVarBegin, "", tag);
    int depth = 0;  // open brackets: an end delimiter inside them belongs to a literal
    while (true) {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
      if (pos >= src_.size()) error(block ? "unclosed tag: missing '%}'" : "unclosed tag: missing '}}'", tag);
      if (depth == 0) {
        const char* close = block ? "%}" : "}}";
        char sign = src_[pos];
        size_t p = pos;
        if (sign == '-' || (block && sign == '+')) ++p;
        else sign = '\0';
        if (src_.compare(p, 2, close) == 0) {
          push(block ? TokenType::kBlockEnd : TokenType::kVarEnd, "", pos);
          return after_tag_end(p + 2, sign, block);
        }
      }
      char c = src_[pos];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = pos;
        while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        push(TokenType::kName, src_.substr(pos, e - pos), pos);
        pos = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        pos = lex_number(pos);
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos);
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~",
                                           "<",  ">",  "=",  ".",  ",",  ":",  "|", "(", ")", "[", "]", "{", "}"};
        const char* op = nullptr;
        for (const char* o : kOps) {
          if (src_.compare(pos, std::strlen(o), o) == 0) {
            op = o;
            break;
          }
        }
        if (!op) error(std::string("unexpected character '") + c + "' in tag", pos);
        if (*op == '(' || *op == '[' || *op == '{') ++depth;
        if (*op == ')' || *op == ']' || *op == '}') {
          if (depth == 0) error(std::string("unexpected '") + op + "'", pos);
          --depth;
        }
        push(TokenType::kOperator, op, pos);
        pos += std::strlen(op);
      }
    }
  }

  // Mirrors Jinja's number rules: a float is tried first; integers are decimal without
  // leading zeros, or 0b/0o/0x; '_' may separate digits.
  size_t lex_number(size_t pos) {
    auto is_digit = [&](size_t i, int base) {
      if (i >= src_.size()) return false;
      unsigned char c = static_cast<unsigned char>(src_[i]);
      if (base == 16) return std::isxdigit(c) != 0;
      return c >= '0' && c < '0' + base;
    };
    // Digits with single '_' separators; returns the end.
    auto digits = [&](size_t i, int base) {
      while (is_digit(i, base) || (src_[i] == '_' && is_digit(i + 1, base))) ++i;
      return i;
    };
    auto emit = [&](TokenType type, size_t end, int base) {
      std::string text;
      for (size_t i = pos; i < end; ++i) {
        if (src_[i] != '_') text += src_[i];
      }
      if (base != 10) {  // normalise to decimal for the parser
        errno = 0;
        unsigned long long v = std::strtoull(text.c_str() + 2, nullptr, base);
        if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX)) error("integer literal out of range", pos);
        text = std::to_string(v);
      }
      push(type, text, pos);
      return end;
    };
    // A number right after '.' is an index (`x.0`), never the fraction of a float.
    bool after_dot = pos > 0 && src_[pos - 1] == '.';
    size_t e = digits(pos, 10);
    if (!after_dot) {
      size_t f = e;
      bool is_float = false;
      if (f + 1 < src_.size() && src_[f] == '.' && is_digit(f + 1, 10)) {
        f = digits(f + 1, 10);
        is_float = true;
      }
      if (f < src_.size() && (src_[f] == 'e' || src_[f] == 'E')) {
        size_t x = f + 1;
        if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
        if (is_digit(x, 10)) {
          f = digits(x, 10);
          is_float = true;
        }
      }
      if (is_float) return emit(TokenType::kFloat, f, 10);
    }
    if (src_[pos] == '0' && pos + 1 < src_.size()) {
      char p = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[pos + 1])));
      int base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
      if (base != 0) {
        size_t i = pos + 2;
        if (i < src_.size() && src_[i] == '_') ++i;
        if (is_digit(i, base)) return emit(TokenType::kInt, digits(i, base), base);
      }
      size_t i = pos + 1;  // "0", "00", "0_0": Jinja never reads "01" as one number
      while (i < src_.size() && (src_[i] == '0' || (src_[i] == '_' && i + 1 < src_.size() && src_[i + 1] == '0'))) ++i;
      return emit(TokenType::kInt, i, 10);
    }
    return emit(TokenType::kInt, e, 10);
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // Python unicode-escape decoding, as Jinja applies to string literals; unknown
  // escapes such as "\d" stay as written.
  size_t lex_string(size_t pos) {
    char quote = src_[pos];
    size_t i = pos + 1;
    std::string out;
    while (true) {
      if (i >= src_.size()) error("unterminated string literal", pos);
      char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) error("unterminated string literal", pos);
      char n = src_[i + 1];
      i += 2;
      auto hex = [&](int count) -> uint32_t {
        uint32_t v = 0;
        for (int k = 0; k < count; ++k) {
          if (i >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[i]))) {
            error("truncated \\x/\\u escape in string literal", i);
          }
          char h = src_[i++];
          v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
        }
        return v;
      };
      switch (n) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'a': out += '\a'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x': append_utf8(out, hex(2)); break;
        case 'u': append_utf8(out, hex(4)); break;
        case 'U': {
          uint32_t cp = hex(8);
          if (cp > 0x10ffff) error("invalid \\U escape in string literal", i);
          append_utf8(out, cp);
          break;
        }
        default:
          if (n >= '0' && n <= '7') {
            uint32_t v = static_cast<uint32_t>(n - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k) {
              v = v * 8 + static_cast<uint32_t>(src_[i++] - '0');
            }
            append_utf8(out, v);
          } else {
            out += '\\';
            out += n;
          }
      }
    }
    push(TokenType::kString, std::move(out), pos);
    return i + 1;
  }

  std::string src_;
  LexOptions opt_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

std::string normalize_source(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  // Jinja's default keep_trailing_newline=False drops a single final newline.
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Token> tokenize(const std::string& source, const LexOptions& options) {
  return Lexer(normalize_source(source), options).run();
}

}  // namespace flashlm::chat
