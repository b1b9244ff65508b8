// Splits Jinja source into text and tag tokens, applying Jinja's whitespace rules
// (`{%-`/`-%}` stripping, trim_blocks, lstrip_blocks, dropping one trailing newline) so
// the parser sees final text runs.
#pragma once

#include <string>
#include <vector>

namespace flashlm::chat {

enum class TokenType {
  kText,        // literal template data
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,      // value holds the decoded string
  kInt,
  kFloat,
  kOperator,    // value holds the operator text: "+", "//", "==", "(", ...
  kEof,
};

struct Token {
  TokenType type;
  std::string value;
  int line;
  int column;
};

struct LexOptions {
  bool trim_blocks = true;    // drop the first newline after a block or comment tag
  bool lstrip_blocks = true;  // drop spaces/tabs before a block or comment tag on its line
};

// Throws TemplateError (see value.h) on malformed input such as an unclosed tag.
std::vector<Token> tokenize(const std::string& source, const LexOptions& options);

const char* token_type_name(TokenType t);

}  // namespace flashlm::chat
