// Walks the AST against a context and renders text. Scoping follows Jinja: `for` bodies
// and macro calls get their own scope (so `set` inside a loop does not leak out; that is
// what namespace() is for), `if` does not. Every render is bounded in steps, nesting and
// output size so no template can hang or exhaust memory.
#pragma once

#include <cstdint>
#include <ctime>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>

#include "chat/ast.h"
#include "chat/value.h"

namespace flashlm::chat {

struct RenderLimits {
  size_t max_output_bytes = size_t{16} << 20;  // any single string, and the output
  uint64_t max_steps = 20'000'000;             // evaluated nodes
  int max_nesting = 400;                       // nested evaluation frames (macro recursion)
  std::optional<std::time_t> now;              // clock for strftime_now; unset = real time
};

class Scope {
 public:
  explicit Scope(Scope* parent) : parent_(parent) {}
  const Value* find(const std::string& name) const;
  Namespace* find_namespace(const std::string& name) const;
  void set(const std::string& name, Value v) { vars_[name] = std::move(v); }

 private:
  Scope* parent_;
  std::unordered_map<std::string, Value> vars_;
};

class Evaluator {
 public:
  Evaluator(const RenderLimits& limits, ValueDict globals);

  // Renders a whole template; `context` must be a dict.
  std::string render(const Body& body, const Value& context);

  Value eval(const Expr& e, Scope& scope);
  // Calls a function value; `line`/`column` locate errors.
  Value call(const Value& callee, CallArgs& args, int line, int column);
  // Renders a body in a fresh child scope of `parent` with `bindings`, e.g. a macro call.
  std::string render_child(const Body& body, Scope& parent, const ValueDict& bindings);

  const RenderLimits& limits() const { return limits_; }
  // Fails once a produced string would exceed the output limit.
  void check_size(size_t bytes) const;

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec(const Body& body, Scope& scope, std::string& out);
  Flow exec_stmt(const Stmt& s, Scope& scope, std::string& out);
  Flow exec_for(const Stmt& s, Scope& scope, std::string& out);
  void exec_set(const Stmt& s, Scope& scope, Value v);
  void define_macro(const Stmt& s, Scope& scope);

  Value eval_name(const Expr& e, Scope& scope);
  Value eval_binary(const Expr& e, Scope& scope);
  Value eval_compare(const Expr& e, Scope& scope);
  Value eval_slice(const Expr& e, Scope& scope);
  Value eval_call(const Expr& e, Scope& scope);
  Value eval_filter_or_test(const Expr& e, Scope& scope);
  CallArgs eval_args(const Expr& e, Scope& scope, size_t first);

  Scope& new_scope(Scope* parent);
  void step();

  struct NestGuard {
    explicit NestGuard(Evaluator& ev);
    ~NestGuard() { --ev_.nesting_; }
    Evaluator& ev_;
  };

  RenderLimits limits_;
  ValueDict globals_;
  std::deque<Scope> scopes_;  // every scope of this render; macros may keep pointers to them
  uint64_t steps_ = 0;
  int nesting_ = 0;
};

// Binary operators with Python semantics; exposed for the filters that reuse them.
Value binary_op(const std::string& op, const Value& a, const Value& b, const Evaluator& ev);
bool value_contains(const Value& container, const Value& item);
// Python-style getattr / getitem as Jinja's sandbox performs them.
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
// Iteration as a Python `for` sees it: list items, dict keys, string characters.
ValueList iterate(const Value& v);
[[noreturn]] void fail_undefined(const Value& v);

}  // namespace flashlm::chat
