// Recursive-descent parser from lexer tokens to the AST, following Jinja's grammar and
// operator precedence (filters and tests bind tighter than arithmetic; `not` looser
// than comparisons). Unsupported tags are rejected here, at parse time.
#pragma once

#include <vector>

#include "chat/ast.h"
#include "chat/lexer.h"

namespace flashlm::chat {

// Deepest nesting of expressions or blocks accepted; keeps recursion bounded for any
// input (the evaluator recurses along the same tree).
inline constexpr int kMaxParseDepth = 200;

// Throws TemplateError with the offending token's position.
Body parse_template(const std::vector<Token>& tokens);

}  // namespace flashlm::chat
