#include "chat/evaluator.h"

#include <cmath>

#include "chat/builtins.h"

namespace flashlm::chat {

// ---- scopes -------------------------------------------------------------------------

const Value* Scope::find(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent_) {
    auto it = s->vars_.find(name);
    if (it != s->vars_.end()) return &it->second;
  }
  return nullptr;
}

Namespace* Scope::find_namespace(const std::string& name) const {
  const Value* v = find(name);
  return v && v->is_namespace() ? &v->as_namespace() : nullptr;
}

// ---- helpers shared with the builtins ---------------------------------------------

void fail_undefined(const Value& v) {
  const std::string& what = v.undefined_name();
  fail(what.empty() ? "value is undefined" : what);
}

namespace {

std::string object_name(const Value& v) {
  if (v.is_dict()) return "dict object";
  if (v.is_list()) return "list object";
  if (v.is_string()) return "str object";
  if (v.is_none()) return "None";
  return v.type_name() + " object";
}

template <typename Op>
int64_t checked(Op op, int64_t x, int64_t y) {
  int64_t r = 0;
  if (op(x, y, &r)) fail("integer overflow");
  return r;
}
bool add_overflow(int64_t x, int64_t y, int64_t* r) { return __builtin_add_overflow(x, y, r); }
bool sub_overflow(int64_t x, int64_t y, int64_t* r) { return __builtin_sub_overflow(x, y, r); }
bool mul_overflow(int64_t x, int64_t y, int64_t* r) { return __builtin_mul_overflow(x, y, r); }

Value repeat(const ValueList* list, const std::string* str, int64_t n, const Evaluator& ev) {
  if (n < 0) n = 0;
  size_t unit = list ? list->size() : str->size();
  if (unit != 0 && static_cast<uint64_t>(n) > ev.limits().max_output_bytes / unit) {
    fail("repetition result exceeds the output size limit");
  }
  if (list) {
    ValueList out;
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), list->begin(), list->end());
    return Value(std::move(out));
  }
  std::string out;
  for (int64_t i = 0; i < n; ++i) out += *str;
  return Value(std::move(out));
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b, const Evaluator& ev) {
  if (op == "~") {
    std::string s = a.str();
    std::string t = b.str();
    ev.check_size(s.size() + t.size());
    return Value(s + t);
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  auto unsupported = [&]() -> Value {
    fail("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  if (a.is_number() && b.is_number()) {
    bool as_float = a.is_float() || b.is_float();
    if (op == "/") {
      if (b.as_float() == 0.0) fail("division by zero");
      return Value(a.as_float() / b.as_float());
    }
    if (as_float) {
      double x = a.as_float(), y = b.as_float();
      if (op == "+") return Value(x + y);
      if (op == "-") return Value(x - y);
      if (op == "*") return Value(x * y);
      if (op == "**") return Value(std::pow(x, y));
      if (y == 0.0) fail(op == "%" ? "float modulo" : "float floor division by zero");
      if (op == "//") return Value(std::floor(x / y));
      if (op == "%") {
        double m = std::fmod(x, y);
        if (m != 0.0 && ((m < 0) != (y < 0))) m += y;  // Python: result takes the divisor's sign
        return Value(m);
      }
      return unsupported();
    }
    int64_t x = a.as_int(), y = b.as_int();
    if (op == "+") return Value(checked(add_overflow, x, y));
    if (op == "-") return Value(checked(sub_overflow, x, y));
    if (op == "*") return Value(checked(mul_overflow, x, y));
    if (op == "**") {
      if (y < 0) return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      int64_t result = 1;
      for (int64_t i = 0; i < y; ++i) {
        result = checked(mul_overflow, result, x);
        if (result == 0 || result == 1) break;
      }
      return Value(result);
    }
    if (y == 0) fail("integer division or modulo by zero");
    if (x == INT64_MIN && y == -1) fail("integer overflow");
    int64_t q = x / y, m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) {  // floor semantics, as in Python
      q -= 1;
      m += y;
    }
    if (op == "//") return Value(q);
    if (op == "%") return Value(m);
    return unsupported();
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      ev.check_size(a.as_string().size() + b.as_string().size());
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list()) {
      ValueList out = a.as_list();
      out.insert(out.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(out));
    }
  }
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && b.is_int()) {
      return repeat(a.is_list() ? &a.as_list() : nullptr, a.is_string() ? &a.as_string() : nullptr, b.as_int(), ev);
    }
    if (a.is_int() && (b.is_string() || b.is_list())) {
      return repeat(b.is_list() ? &b.as_list() : nullptr, b.is_string() ? &b.as_string() : nullptr, a.as_int(), ev);
    }
  }
  if (op == "%" && a.is_string()) fail("printf-style string formatting ('%') is not supported");
  return unsupported();
}

bool value_contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string()) fail("'in <string>' requires string as left operand, not " + item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : container.as_list()) {
        if (values_equal(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict: return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    case Value::Kind::kNamespace:
      return item.is_string() && container.as_namespace().attrs.find(item.as_string()) != nullptr;
    default: fail("argument of type '" + container.type_name() + "' is not iterable");
  }
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_namespace()) {
    if (const Value* v = obj.as_namespace().attrs.find(name)) return *v;
    return Value::undefined("'Namespace' object has no attribute '" + name + "'");
  }
  Value method = get_method(obj, name);  // Python getattr finds methods before dict keys
  if (!method.is_undefined()) return method;
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(name)) return *v;
  }
  return Value::undefined("'" + object_name(obj) + "' has no attribute '" + name + "'");
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      const ValueList& l = obj.as_list();
      int64_t n = static_cast<int64_t>(l.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return l[static_cast<size_t>(i)];
    } else {
      std::vector<std::string> chars = utf8_chars(obj.as_string());
      int64_t n = static_cast<int64_t>(chars.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value(chars[static_cast<size_t>(i)]);
    }
    return Value::undefined(object_name(obj) + " has no element " + std::to_string(key.as_int()));
  }
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
  }
  if (key.is_string()) return get_attr(obj, key.as_string());  // Jinja falls back to getattr
  return Value::undefined("'" + object_name(obj) + "' has no element " + key.repr());
}

ValueList iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return v.as_list();
    case Value::Kind::kDict: {
      ValueList keys;
      for (const auto& [k, _] : v.as_dict().items()) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      ValueList chars;
      for (std::string& c : utf8_chars(v.as_string())) chars.emplace_back(std::move(c));
      return chars;
    }
    default: fail("'" + v.type_name() + "' object is not iterable");
  }
}

// ---- evaluator ----------------------------------------------------------------------

Evaluator::NestGuard::NestGuard(Evaluator& ev) : ev_(ev) {
  if (++ev_.nesting_ > ev_.limits_.max_nesting) {
    --ev_.nesting_;
    fail("maximum recursion depth exceeded");
  }
}

Evaluator::Evaluator(const RenderLimits& limits, ValueDict globals)
    : limits_(limits), globals_(std::move(globals)) {}

void Evaluator::check_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    fail("output exceeds the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
  }
}

void Evaluator::step() {
  if (++steps_ > limits_.max_steps) fail("template exceeded the evaluation step limit");
}

Scope& Evaluator::new_scope(Scope* parent) { return scopes_.emplace_back(parent); }

std::string Evaluator::render(const Body& body, const Value& context) {
  Scope& root = new_scope(nullptr);
  for (const auto& [k, v] : globals_.items()) root.set(k, v);
  if (context.is_dict()) {
    for (const auto& [k, v] : context.as_dict().items()) root.set(k, v);
  }
  Scope& top = new_scope(&root);
  std::string out;
  exec(body, top, out);
  return out;
}

std::string Evaluator::render_child(const Body& body, Scope& parent, const ValueDict& bindings) {
  NestGuard guard(*this);
  Scope& s = new_scope(&parent);
  for (const auto& [k, v] : bindings.items()) s.set(k, v);
  std::string out;
  exec(body, s, out);
  return out;
}

Evaluator::Flow Evaluator::exec(const Body& body, Scope& scope, std::string& out) {
  for (const StmtPtr& s : body) {
    Flow f = exec_stmt(*s, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Evaluator::Flow Evaluator::exec_stmt(const Stmt& s, Scope& scope, std::string& out) {
  NestGuard guard(*this);
  step();
  try {
    switch (s.kind) {
      case StmtKind::kText:
        check_size(out.size() + s.text.size());
        out += s.text;
        return Flow::kNormal;
      case StmtKind::kOutput: {
        std::string text = eval(*s.expr, scope).str();
        check_size(out.size() + text.size());
        out += text;
        return Flow::kNormal;
      }
      case StmtKind::kIf:
        for (size_t i = 0; i < s.conds.size(); ++i) {
          if (eval(*s.conds[i], scope).truthy()) return exec(s.bodies[i], scope, out);
        }
        return exec(s.else_body, scope, out);
      case StmtKind::kFor: return exec_for(s, scope, out);
      case StmtKind::kSet: exec_set(s, scope, eval(*s.expr, scope)); return Flow::kNormal;
      case StmtKind::kSetBlock: {
        std::string text;
        Flow f = exec(s.bodies[0], scope, text);
        scope.set(s.targets[0], Value(std::move(text)));
        return f;
      }
      case StmtKind::kMacro: define_macro(s, scope); return Flow::kNormal;
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
      case StmtKind::kScope: return exec(s.bodies[0], scope, out);
    }
  } catch (TemplateError& e) {
    if (e.line == 0) {
      e.line = s.line;
      e.column = s.column;
    }
    throw;
  }
  return Flow::kNormal;
}

void Evaluator::exec_set(const Stmt& s, Scope& scope, Value v) {
  if (!s.attr.empty()) {
    Namespace* ns = scope.find_namespace(s.targets[0]);
    if (!ns) fail("cannot assign attribute on '" + s.targets[0] + "': it is not a namespace");
    ns->attrs.set(s.attr, std::move(v));
    return;
  }
  if (s.targets.size() == 1) {
    scope.set(s.targets[0], std::move(v));
    return;
  }
  ValueList items = iterate(v);
  if (items.size() != s.targets.size()) {
    fail("cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(s.targets.size()) + " names");
  }
  for (size_t i = 0; i < items.size(); ++i) scope.set(s.targets[i], items[i]);
}

Evaluator::Flow Evaluator::exec_for(const Stmt& s, Scope& scope, std::string& out) {
  Value iterable = eval(*s.expr, scope);
  if (iterable.is_none()) fail("'NoneType' object is not iterable");
  ValueList items = iterate(iterable);
  Scope& loop_scope = new_scope(&scope);
  auto bind = [&](const Value& item) {
    if (s.targets.size() == 1) {
      loop_scope.set(s.targets[0], item);
      return;
    }
    ValueList parts = iterate(item);
    if (parts.size() != s.targets.size()) {
      fail("cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(s.targets.size()) + " loop variables");
    }
    for (size_t i = 0; i < parts.size(); ++i) loop_scope.set(s.targets[i], parts[i]);
  };
  if (s.cond) {  // `for x in xs if c`: filtered first, so loop.length counts what remains
    ValueList kept;
    for (const Value& item : items) {
      step();
      bind(item);
      if (eval(*s.cond, loop_scope).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(s.else_body, scope, out);
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    step();
    bind(items[static_cast<size_t>(i)]);
    ValueDict loop;
    loop.set("index", Value(i + 1));
    loop.set("index0", Value(i));
    loop.set("revindex", Value(n - i));
    loop.set("revindex0", Value(n - i - 1));
    loop.set("first", Value(i == 0));
    loop.set("last", Value(i == n - 1));
    loop.set("length", Value(n));
    loop.set("depth", Value(1));
    loop.set("depth0", Value(0));
    loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item"));
    loop.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item"));
    loop.set("cycle", Value(std::make_shared<const Callable>(Callable{"loop.cycle", [i](Evaluator&, CallArgs& a) {
      if (a.positional.empty()) fail("no items for cycling given");
      return a.positional[static_cast<size_t>(i) % a.positional.size()];
    }})));
    loop_scope.set("loop", Value(std::move(loop)));
    Flow f = exec(s.bodies[0], loop_scope, out);
    if (f == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Evaluator::define_macro(const Stmt& s, Scope& scope) {
  const Stmt* macro = &s;
  Scope* defining = &scope;
  NativeFn fn = [macro, defining](Evaluator& ev, CallArgs& args) -> Value {
    const auto& params = macro->params;
    if (args.positional.size() > params.size()) {
      fail("macro '" + macro->text + "' takes " + std::to_string(params.size()) + " arguments, " +
           std::to_string(args.positional.size()) + " given");
    }
    ValueDict bound;
    for (size_t i = 0; i < args.positional.size(); ++i) bound.set(params[i].name, args.positional[i]);
    for (auto& [k, v] : args.keyword) {
      bool known = false;
      for (const auto& p : params) known = known || p.name == k;
      if (!known) fail("macro '" + macro->text + "' has no argument named '" + k + "'");
      bound.set(k, v);
    }
    Scope& defaults_scope = ev.new_scope(defining);
    for (const auto& p : params) {
      if (bound.find(p.name)) continue;
      bound.set(p.name, p.default_value ? ev.eval(*p.default_value, defaults_scope)
                                        : Value::undefined("parameter '" + p.name + "' was not provided"));
    }
    return Value(ev.render_child(macro->bodies[0], *defining, bound));
  };
  scope.set(s.text, Value(std::make_shared<const Callable>(Callable{s.text, std::move(fn)})));
}

Value Evaluator::eval(const Expr& e, Scope& scope) {
  NestGuard guard(*this);
  step();
  try {
    switch (e.kind) {
      case ExprKind::kLiteral: return e.value;
      case ExprKind::kName: return eval_name(e, scope);
      case ExprKind::kList: {
        ValueList items;
        items.reserve(e.items.size());
        for (const auto& c : e.items) items.push_back(eval(*c, scope));
        return e.negated ? Value::tuple(std::move(items)) : Value(std::move(items));
      }
      case ExprKind::kDict: {
        ValueDict d;
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          Value k = eval(*e.items[i], scope);
          if (!k.is_string()) fail("only string keys are supported in dict literals");
          d.set(k.as_string(), eval(*e.items[i + 1], scope));
        }
        return Value(std::move(d));
      }
      case ExprKind::kGetAttr: return get_attr(eval(*e.items[0], scope), e.name);
      case ExprKind::kGetItem: {
        Value obj = eval(*e.items[0], scope);
        return get_item(obj, eval(*e.items[1], scope));
      }
      case ExprKind::kSlice: return eval_slice(e, scope);
      case ExprKind::kCall: return eval_call(e, scope);
      case ExprKind::kFilter:
      case ExprKind::kTest: return eval_filter_or_test(e, scope);
      case ExprKind::kUnary: {
        Value v = eval(*e.items[0], scope);
        if (e.name == "not") return Value(!v.truthy());
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_number()) fail("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
        if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
        if (v.is_float()) return Value(-v.as_float());
        if (v.as_int() == INT64_MIN) fail("integer overflow");
        return Value(-v.as_int());
      }
      case ExprKind::kBinary: return eval_binary(e, scope);
      case ExprKind::kCompare: return eval_compare(e, scope);
      case ExprKind::kCondExpr:
        if (eval(*e.items[0], scope).truthy()) return eval(*e.items[1], scope);
        if (e.items[2]) return eval(*e.items[2], scope);
        return Value::undefined("the inline if-expression evaluated to false and had no else");
    }
  } catch (TemplateError& err) {
    if (err.line == 0) {
      err.line = e.line;
      err.column = e.column;
    }
    throw;
  }
  return Value();
}

Value Evaluator::eval_name(const Expr& e, Scope& scope) {
  if (const Value* v = scope.find(e.name)) return *v;
  return Value::undefined("'" + e.name + "' is undefined");
}

Value Evaluator::eval_binary(const Expr& e, Scope& scope) {
  Value a = eval(*e.items[0], scope);
  if (e.name == "and") return a.truthy() ? eval(*e.items[1], scope) : a;
  if (e.name == "or") return a.truthy() ? a : eval(*e.items[1], scope);
  return binary_op(e.name, a, eval(*e.items[1], scope), *this);
}

Value Evaluator::eval_compare(const Expr& e, Scope& scope) {
  Value left = eval(*e.items[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.items[i + 1], scope);
    const std::string& op = e.ops[i];
    bool r;
    if (op == "==") r = values_equal(left, right);
    else if (op == "!=") r = !values_equal(left, right);
    else if (op == "in") r = value_contains(right, left);
    else if (op == "not in") r = !value_contains(right, left);
    else {
      if (left.is_undefined()) fail_undefined(left);
      if (right.is_undefined()) fail_undefined(right);
      int c = values_compare(left, right);
      r = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
    }
    if (!r) return Value(false);  // Python chains: a < b < c means a < b and b < c
    left = std::move(right);
  }
  return Value(true);
}

Value Evaluator::eval_slice(const Expr& e, Scope& scope) {
  Value obj = eval(*e.items[0], scope);
  if (obj.is_undefined()) fail_undefined(obj);
  auto bound = [&](size_t idx) -> std::optional<int64_t> {
    if (!e.items[idx]) return std::nullopt;
    Value v = eval(*e.items[idx], scope);
    if (v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) fail("slice indices must be integers or None");
    return v.as_int();
  };
  std::optional<int64_t> start = bound(1), stop = bound(2), step_v = bound(3);
  int64_t st = step_v.value_or(1);
  if (st == 0) fail("slice step cannot be zero");
  ValueList src;
  std::vector<std::string> chars;
  int64_t n;
  if (obj.is_list()) {
    n = static_cast<int64_t>(obj.as_list().size());
  } else if (obj.is_string()) {
    chars = utf8_chars(obj.as_string());
    n = static_cast<int64_t>(chars.size());
  } else {
    fail("'" + obj.type_name() + "' object is not subscriptable");
  }
  // Python's slice.indices(): clamp, with defaults depending on the step's sign.
  auto clamp = [&](std::optional<int64_t> v, int64_t def) {
    if (!v) return def;
    int64_t x = *v;
    if (x < 0) x += n;
    if (st > 0) return std::min(std::max(x, int64_t{0}), n);
    return std::min(std::max(x, int64_t{-1}), n - 1);
  };
  int64_t b = clamp(start, st > 0 ? 0 : n - 1);
  int64_t end = clamp(stop, st > 0 ? n : -1);
  ValueList out_list;
  std::string out_str;
  for (int64_t i = b; st > 0 ? i < end : i > end; i += st) {
    if (obj.is_list()) out_list.push_back(obj.as_list()[static_cast<size_t>(i)]);
    else out_str += chars[static_cast<size_t>(i)];
  }
  return obj.is_list() ? Value(std::move(out_list)) : Value(std::move(out_str));
}

CallArgs Evaluator::eval_args(const Expr& e, Scope& scope, size_t first) {
  CallArgs args;
  for (size_t i = first; i < e.items.size(); ++i) args.positional.push_back(eval(*e.items[i], scope));
  for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, eval(*v, scope));
  return args;
}

Value Evaluator::eval_call(const Expr& e, Scope& scope) {
  Value callee = eval(*e.items[0], scope);
  CallArgs args = eval_args(e, scope, 1);
  return call(callee, args, e.line, e.column);
}

Value Evaluator::call(const Value& callee, CallArgs& args, int line, int column) {
  if (callee.is_undefined()) fail_undefined(callee);
  if (!callee.is_callable() || !callee.as_callable().fn) fail("'" + callee.type_name() + "' object is not callable", line, column);
  return callee.as_callable().fn(*this, args);
}

Value Evaluator::eval_filter_or_test(const Expr& e, Scope& scope) {
  Value input = eval(*e.items[0], scope);
  CallArgs args = eval_args(e, scope, 1);
  if (e.kind == ExprKind::kFilter) return apply_filter(*this, e.name, input, args);
  bool r = apply_test(*this, e.name, input, args);
  return Value(e.negated ? !r : r);
}

}  // namespace flashlm::chat
