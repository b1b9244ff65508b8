#include "chat/parser.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <initializer_list>
#include <string>

namespace flashlm::chat {

namespace {

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : toks_(tokens) {}

  Body parse_all() {
    Body body = subparse({});
    if (cur().type != TokenType::kEof) error("unexpected tag");  // an end tag with no opener
    return body;
  }

 private:
  // ---- token helpers -------------------------------------------------------------
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  [[noreturn]] void error(const std::string& msg) const { fail(msg, cur().line, cur().column); }
  bool is_op(const char* op) const { return cur().type == TokenType::kOperator && cur().value == op; }
  bool is_name(const char* n) const { return cur().type == TokenType::kName && cur().value == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }
  std::string describe(const Token& t) const {
    if (t.type == TokenType::kName || t.type == TokenType::kOperator) return "'" + t.value + "'";
    return token_type_name(t.type);
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) error(std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName) error("expected a name, got " + describe(cur()));
    std::string v = cur().value;
    advance();
    return v;
  }
  void expect_block_end() {
    if (cur().type != TokenType::kBlockEnd) error("expected end of statement '%}', got " + describe(cur()));
    advance();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxParseDepth) p_.error("template nested too deeply");
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  ExprPtr node(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }
  // Left-nested chains (a + b + c ...) are built iteratively but evaluated
  // recursively, so their depth is bounded here too.
  ExprPtr binary(const char* op, ExprPtr l, ExprPtr r, const Token& at) {
    auto e = node(ExprKind::kBinary, at);
    e->name = op;
    e->items.push_back(std::move(l));
    e->items.push_back(std::move(r));
    check_depth(*e);
    return e;
  }
  void check_depth(Expr& e) {
    int d = 0;
    for (const auto& c : e.items) {
      if (c) d = std::max(d, c->depth);
    }
    for (const auto& [k, c] : e.kwargs) d = std::max(d, c->depth);
    e.depth = d + 1;
    if (e.depth > kMaxParseDepth) fail("expression nested too deeply", e.line, e.column);
  }

  // ---- statements ------------------------------------------------------------------
  // Parses until `{% <one of ends> ... %}` (left unconsumed, positioned at the name) or EOF.
  Body subparse(std::initializer_list<const char*> ends) {
    DepthGuard guard(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::kEof) {
        if (ends.size() != 0) {
          const char* closing = *ends.begin();
          for (const char* e : ends) {
            if (std::string(e).rfind("end", 0) == 0) closing = e;
          }
          error(std::string("unexpected end of template: missing '{% ") + closing + " %}'");
        }
        return body;
      }
      if (t.type == TokenType::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = t.line;
        s->column = t.column;
        s->text = t.value;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TokenType::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = t.line;
        s->column = t.column;
        advance();
        s->expr = parse_tuple(true);
        if (cur().type != TokenType::kVarEnd) error("expected end of print statement '}}', got " + describe(cur()));
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::kBlockBegin) {
        const Token& name = peek();
        if (name.type == TokenType::kName) {
          for (const char* e : ends) {
            if (name.value == e) {
              advance();
              return body;
            }
          }
        }
        advance();
        body.push_back(parse_statement());
      } else {
        error("unexpected " + describe(t));
      }
    }
  }

  StmtPtr new_stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  StmtPtr parse_statement() {
    const Token at = cur();
    if (at.type != TokenType::kName) error("expected a tag name, got " + describe(at));
    const std::string& tag = at.value;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "break" || tag == "continue") {
      advance();
      expect_block_end();
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop", at.line, at.column);
      return new_stmt(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, at);
    }
    if (tag == "generation") {  // transformers' assistant-mask extension: renders its body
      advance();
      expect_block_end();
      auto s = new_stmt(StmtKind::kScope, at);
      s->bodies.push_back(subparse({"endgeneration"}));
      advance();
      expect_block_end();
      return s;
    }
    static const char* const kEndTags[] = {"endif", "endfor", "endset", "endmacro", "elif", "else", "endgeneration"};
    for (const char* e : kEndTags) {
      if (tag == e) error("unexpected '" + tag + "' tag");
    }
    error("unsupported tag '" + tag + "'");
  }

  StmtPtr parse_if() {
    auto s = new_stmt(StmtKind::kIf, cur());
    advance();  // 'if'
    while (true) {
      s->conds.push_back(parse_tuple(false));  // Jinja: no inline if-expression here
      expect_block_end();
      s->bodies.push_back(subparse({"elif", "else", "endif"}));
      std::string which = cur().value;
      advance();
      if (which == "elif") continue;
      if (which == "else") {
        expect_block_end();
        s->else_body = subparse({"endif"});
        advance();
      }
      expect_block_end();
      return s;
    }
  }

  // Names for `for` and `set`: `x`, `a, b` or `(a, b)`.
  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    do {
      if (paren && is_op(")")) break;
      names.push_back(expect_name());
    } while (skip_op(","));
    if (paren) expect_op(")");
    return names;
  }

  StmtPtr parse_for() {
    auto s = new_stmt(StmtKind::kFor, cur());
    advance();  // 'for'
    s->targets = parse_targets();
    if (!skip_name("in")) error("expected 'in' in for loop, got " + describe(cur()));
    s->expr = parse_tuple(false);
    if (skip_name("if")) s->cond = parse_expression(true);
    if (is_name("recursive")) error("recursive for loops are not supported");
    expect_block_end();
    ++loop_depth_;
    s->bodies.push_back(subparse({"endfor", "else"}));
    --loop_depth_;
    if (cur().value == "else") {
      advance();
      expect_block_end();
      s->else_body = subparse({"endfor"});
    }
    advance();  // 'endfor'
    expect_block_end();
    return s;
  }

  StmtPtr parse_set() {
    const Token at = cur();
    advance();  // 'set'
    if (cur().type == TokenType::kName && peek().type == TokenType::kOperator && peek().value == ".") {
      auto s = new_stmt(StmtKind::kSet, at);
      s->targets.push_back(expect_name());
      advance();  // '.'
      s->attr = expect_name();
      expect_op("=");
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    std::vector<std::string> targets = parse_targets();
    if (skip_op("=")) {
      auto s = new_stmt(StmtKind::kSet, at);
      s->targets = std::move(targets);
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    if (targets.size() != 1) error("a block set assigns exactly one name");
    if (is_op("|")) error("filters on block set are not supported");
    expect_block_end();
    auto s = new_stmt(StmtKind::kSetBlock, at);
    s->targets = std::move(targets);
    int saved_loops = loop_depth_;
    s->bodies.push_back(subparse({"endset"}));
    loop_depth_ = saved_loops;
    advance();
    expect_block_end();
    return s;
  }

  StmtPtr parse_macro() {
    auto s = new_stmt(StmtKind::kMacro, cur());
    advance();  // 'macro'
    s->text = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      MacroParam p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression(true);
      s->params.push_back(std::move(p));
      if (!skip_op(",")) break;
    }
    expect_op(")");
    expect_block_end();
    int saved_loops = loop_depth_;
    loop_depth_ = 0;  // break/continue cannot cross a macro boundary
    s->bodies.push_back(subparse({"endmacro"}));
    loop_depth_ = saved_loops;
    advance();
    expect_block_end();
    return s;
  }

  // ---- expressions -----------------------------------------------------------------
  // An expression or a bare tuple `a, b` (as in `{% set x = 1, 2 %}`).
  ExprPtr parse_tuple(bool with_condexpr) {
    const Token at = cur();
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    auto list = node(ExprKind::kList, at);
    list->negated = true;  // marks a tuple
    list->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().type == TokenType::kVarEnd || cur().type == TokenType::kBlockEnd) break;
      list->items.push_back(parse_expression(with_condexpr));
    }
    check_depth(*list);
    return list;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    const Token at = cur();
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      auto c = node(ExprKind::kCondExpr, at);
      c->items.push_back(parse_or());
      c->items.push_back(std::move(expr));
      c->items.push_back(skip_name("else") ? parse_condexpr() : nullptr);
      check_depth(*c);
      expr = std::move(c);
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const Token at = cur();
      advance();
      left = binary("or", std::move(left), parse_and(), at);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const Token at = cur();
      advance();
      left = binary("and", std::move(left), parse_not(), at);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto n = node(ExprKind::kUnary, cur());
      advance();
      n->name = "not";
      n->items.push_back(parse_not());
      check_depth(*n);
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token at = cur();
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == TokenType::kOperator &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == ">" ||
           cur().value == "<=" || cur().value == ">=")) {
        op = cur().value;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == TokenType::kName && peek().value == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(ExprKind::kCompare, at);
        cmp->items.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    if (!cmp) return first;
    check_depth(*cmp);
    return cmp;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token at = cur();
      std::string op = at.value;
      advance();
      left = binary(op == "+" ? "+" : "-", std::move(left), parse_concat(), at);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const Token at = cur();
      advance();
      left = binary("~", std::move(left), parse_math2(), at);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token at = cur();
      static const char* const kOps[] = {"*", "/", "//", "%"};
      const char* op = *std::find_if(std::begin(kOps), std::end(kOps), [&](const char* o) { return at.value == o; });
      advance();
      left = binary(op, std::move(left), parse_pow(), at);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Token at = cur();
      advance();
      left = binary("**", std::move(left), parse_unary(true), at);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr n;
    if (is_op("-") || is_op("+")) {
      n = node(ExprKind::kUnary, cur());
      n->name = cur().value == "-" ? "-" : "+";
      advance();
      n->items.push_back(parse_unary(false));
      check_depth(*n);
    } else {
      n = parse_primary();
    }
    n = parse_postfix(std::move(n));
    if (with_filter) n = parse_filter_expr(std::move(n));
    return n;
  }

  ExprPtr parse_primary() {
    const Token at = cur();
    switch (at.type) {
      case TokenType::kName: {
        advance();
        auto n = node(ExprKind::kLiteral, at);
        if (at.value == "true" || at.value == "True") n->value = Value(true);
        else if (at.value == "false" || at.value == "False") n->value = Value(false);
        else if (at.value == "none" || at.value == "None") n->value = Value::none();
        else {
          n->kind = ExprKind::kName;
          n->name = at.value;
        }
        check_depth(*n);
        return n;
      }
      case TokenType::kString: {
        std::string s;
        while (cur().type == TokenType::kString) {  // adjacent literals concatenate
          s += cur().value;
          advance();
        }
        auto n = node(ExprKind::kLiteral, at);
        n->value = Value(std::move(s));
        check_depth(*n);
        return n;
      }
      case TokenType::kInt:
      case TokenType::kFloat: {
        advance();
        auto n = node(ExprKind::kLiteral, at);
        errno = 0;
        if (at.type == TokenType::kInt) {
          long long v = std::strtoll(at.value.c_str(), nullptr, 10);
          if (errno == ERANGE) fail("integer literal out of range", at.line, at.column);
          n->value = Value(static_cast<int64_t>(v));
        } else {
          n->value = Value(std::strtod(at.value.c_str(), nullptr));
        }
        check_depth(*n);
        return n;
      }
      case TokenType::kOperator: {
        if (at.value == "(") {
          advance();
          if (skip_op(")")) {
            auto n = node(ExprKind::kList, at);
            n->negated = true;  // marks a tuple
            check_depth(*n);
            return n;
          }
          ExprPtr first = parse_expression(true);
          if (skip_op(")")) return first;
          expect_op(",");
          auto n = node(ExprKind::kList, at);
          n->negated = true;  // marks a tuple
          n->items.push_back(std::move(first));
          while (!is_op(")")) {
            n->items.push_back(parse_expression(true));
            if (!skip_op(",")) break;
          }
          expect_op(")");
          check_depth(*n);
          return n;
        }
        if (at.value == "[") {
          advance();
          auto n = node(ExprKind::kList, at);
          while (!is_op("]")) {
            n->items.push_back(parse_expression(true));
            if (!skip_op(",")) break;
          }
          expect_op("]");
          check_depth(*n);
          return n;
        }
        if (at.value == "{") {
          advance();
          auto n = node(ExprKind::kDict, at);
          while (!is_op("}")) {
            n->items.push_back(parse_expression(true));
            expect_op(":");
            n->items.push_back(parse_expression(true));
            if (!skip_op(",")) break;
          }
          expect_op("}");
          check_depth(*n);
          return n;
        }
        break;
      }
      default: break;
    }
    error("unexpected " + describe(at) + " in expression");
  }

  ExprPtr parse_postfix(ExprPtr n) {
    while (true) {
      const Token at = cur();
      if (skip_op(".")) {
        if (cur().type == TokenType::kName) {
          auto a = node(ExprKind::kGetAttr, at);
          a->name = cur().value;
          advance();
          a->items.push_back(std::move(n));
          check_depth(*a);
          n = std::move(a);
        } else if (cur().type == TokenType::kInt) {
          auto idx = node(ExprKind::kLiteral, cur());
          idx->value = Value(static_cast<int64_t>(std::strtoll(cur().value.c_str(), nullptr, 10)));
          check_depth(*idx);
          advance();
          auto g = node(ExprKind::kGetItem, at);
          g->items.push_back(std::move(n));
          g->items.push_back(std::move(idx));
          check_depth(*g);
          n = std::move(g);
        } else {
          error("expected an attribute name after '.', got " + describe(cur()));
        }
      } else if (skip_op("[")) {
        n = parse_subscript(std::move(n), at);
      } else if (is_op("(")) {
        n = parse_call(std::move(n), ExprKind::kCall, at);
      } else {
        return n;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target, const Token& at) {
    ExprPtr parts[3];
    bool is_slice = false;
    if (!is_op(":")) parts[0] = parse_expression(true);
    if (skip_op(":")) {
      is_slice = true;
      if (!is_op(":") && !is_op("]")) parts[1] = parse_expression(true);
      if (skip_op(":") && !is_op("]")) parts[2] = parse_expression(true);
    }
    expect_op("]");
    auto n = node(is_slice ? ExprKind::kSlice : ExprKind::kGetItem, at);
    n->items.push_back(std::move(target));
    n->items.push_back(std::move(parts[0]));
    if (is_slice) {
      n->items.push_back(std::move(parts[1]));
      n->items.push_back(std::move(parts[2]));
    }
    check_depth(*n);
    return n;
  }

  // Parses `(args, kw=val)` into n (whose items[0] is already set for calls).
  void parse_call_args(Expr& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (cur().type == TokenType::kName && peek().type == TokenType::kOperator && peek().value == "=") {
        std::string key = cur().value;
        advance();
        advance();
        n.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (is_op("*") || is_op("**")) error("*args and **kwargs in calls are not supported");
        if (!n.kwargs.empty()) error("positional argument follows keyword argument");
        n.items.push_back(parse_expression(true));
      }
      if (!skip_op(",")) break;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee, ExprKind kind, const Token& at) {
    auto n = node(kind, at);
    n->items.push_back(std::move(callee));
    parse_call_args(*n);
    check_depth(*n);
    return n;
  }

  ExprPtr parse_filter_expr(ExprPtr n) {
    while (true) {
      const Token at = cur();
      if (skip_op("|")) {
        auto f = node(ExprKind::kFilter, at);
        f->name = expect_name();
        while (skip_op(".")) f->name += "." + expect_name();
        f->items.push_back(std::move(n));
        if (is_op("(")) parse_call_args(*f);
        check_depth(*f);
        n = std::move(f);
      } else if (skip_name("is")) {
        auto t = node(ExprKind::kTest, at);
        t->negated = skip_name("not");
        t->name = expect_name();
        t->items.push_back(std::move(n));
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((cur().type == TokenType::kName || cur().type == TokenType::kString ||
                    cur().type == TokenType::kInt || cur().type == TokenType::kFloat || is_op("[") ||
                    is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) error("tests cannot be chained with 'is'");
          t->items.push_back(parse_postfix(parse_primary()));
        }
        check_depth(*t);
        n = std::move(t);
      } else if (is_op("(")) {
        n = parse_call(std::move(n), ExprKind::kCall, at);
      } else {
        return n;
      }
    }
  }

  const std::vector<Token>& toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse_template(const std::vector<Token>& tokens) { return Parser(tokens).parse_all(); }

}  // namespace flashlm::chat
