// Runtime values of the chat-template interpreter: the Python object model that Jinja
// templates observe (undefined, None, bool, int, float, str, list, dict, namespace,
// callables), with Python's printing, truthiness, equality and ordering rules.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace flashlm::chat {

// Thrown inside the interpreter only; ChatTemplate converts it to a Status at the
// public boundary. The evaluator recurses deeply and nearly every operation can fail,
// so unwinding keeps it readable; nothing outside src/chat ever sees one.
struct TemplateError {
  std::string message;
  int line = 0;    // 1-based; 0 = position not known yet (filled in by the caller)
  int column = 0;
};
[[noreturn]] void fail(std::string message, int line = 0, int column = 0);

class Value;
using ValueList = std::vector<Value>;

// Insertion-ordered string-keyed map, like a Python dict built from JSON.
class ValueDict {
 public:
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(std::string key, Value value);  // replaces an existing key in place
  size_t size() const;  // defined below Value: Value is incomplete here
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

class Evaluator;
// Builtin functions, bound methods and macros; the evaluator is passed so a callable can
// render template code (macros) or consult the environment (strftime_now's clock).
using NativeFn = std::function<Value(Evaluator&, CallArgs&)>;
struct Callable {
  std::string name;
  NativeFn fn;
};

// Jinja's `namespace()`: the one mutable object a template can create.
struct Namespace {
  ValueDict attrs;
};

struct Undefined {
  std::string name;  // what was looked up, for error messages
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

  Value() : v_(Undefined{}) {}
  static Value undefined(std::string name = {}) { return Value(Undefined{std::move(name)}); }
  static Value none() { return Value(std::monostate{}); }
  Value(bool b) : v_(b) {}                    // NOLINT: implicit on purpose
  Value(int64_t i) : v_(i) {}                 // NOLINT
  Value(int i) : v_(static_cast<int64_t>(i)) {}  // NOLINT
  Value(double d) : v_(d) {}                  // NOLINT
  Value(std::string s) : v_(std::move(s)) {}  // NOLINT
  Value(const char* s) : v_(std::string(s)) {}  // NOLINT
  Value(ValueList l) : v_(std::make_shared<const ValueList>(std::move(l))) {}  // NOLINT
  Value(ValueDict d) : v_(std::make_shared<const ValueDict>(std::move(d))) {}  // NOLINT
  Value(std::shared_ptr<Namespace> ns) : v_(std::move(ns)) {}  // NOLINT
  Value(std::shared_ptr<const Callable> c) : v_(std::move(c)) {}  // NOLINT

  // A list that prints as a Python tuple: `(1, 2)`, from tuple literals and dict items.
  static Value tuple(ValueList l) {
    Value v(std::move(l));
    v.tuple_ = true;
    return v;
  }
  bool is_tuple() const { return tuple_ && is_list(); }

  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  // Python: bool is an int
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_namespace() const { return kind() == Kind::kNamespace; }
  bool is_callable() const { return kind() == Kind::kCallable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return is_bool() ? (as_bool() ? 1 : 0) : std::get<int64_t>(v_); }
  double as_float() const { return is_float() ? std::get<double>(v_) : static_cast<double>(as_int()); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const ValueList& as_list() const { return *std::get<std::shared_ptr<const ValueList>>(v_); }
  const ValueDict& as_dict() const { return *std::get<std::shared_ptr<const ValueDict>>(v_); }
  Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  const std::string& undefined_name() const { return std::get<Undefined>(v_).name; }

  bool truthy() const;
  std::string str() const;   // Python str(); undefined prints as ""
  std::string repr() const;  // Python repr(), used for lists and dicts
  std::string type_name() const;

 private:
  explicit Value(Undefined u) : v_(std::move(u)) {}
  explicit Value(std::monostate m) : v_(m) {}
  std::variant<Undefined, std::monostate, bool, int64_t, double, std::string,
               std::shared_ptr<const ValueList>, std::shared_ptr<const ValueDict>,
               std::shared_ptr<Namespace>, std::shared_ptr<const Callable>>
      v_;
  bool tuple_ = false;
};

bool values_equal(const Value& a, const Value& b);
// Python ordering for numbers, strings and lists; anything else is an error.
int values_compare(const Value& a, const Value& b);

// Python repr() of a float: shortest round-trip digits, "1.0", "1e+20", "inf", "nan".
std::string format_float(double d);
// json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sort_keys) as transformers
// configures it; indent < 0 means None (single line, ", " and ": " separators).
std::string to_python_json(const Value& v, int indent, bool sort_keys);

// UTF-8 helpers: Python strings index by code point, not byte.
std::vector<std::string> utf8_chars(std::string_view s);
size_t utf8_length(std::string_view s);

inline size_t ValueDict::size() const { return items_.size(); }

}  // namespace flashlm::chat
