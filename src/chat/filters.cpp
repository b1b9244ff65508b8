// Jinja filters and tests, with transformers' tojson (json.dumps, no HTML escaping).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include "chat/builtins.h"
#include "chat/builtins_util.h"
#include "chat/evaluator.h"

namespace flashlm::chat {

namespace {

using FilterFn = Value (*)(Evaluator&, const Value&, CallArgs&);
using TestFn = bool (*)(Evaluator&, const Value&, CallArgs&);

// Jinja's attribute getter: "a.b.0" walks subscripts, falling back to attributes.
Value lookup_path(const Value& item, const std::string& path) {
  Value cur = item;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    if (cur.is_undefined()) return cur;
    cur = get_item(cur, numeric ? Value(static_cast<int64_t>(std::strtoll(part.c_str(), nullptr, 10))) : Value(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

int sort_compare(const Value& a, const Value& b, bool case_sensitive) {
  if (!case_sensitive && a.is_string() && b.is_string()) {
    return values_compare(Value(py_lower(a.as_string())), Value(py_lower(b.as_string())));
  }
  return values_compare(a, b);
}

Value f_trim(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "trim", {"chars"});
  return Value(py_strip(v.str(), r.get(0), true, true));
}
Value f_upper(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "upper", {});
  return Value(py_upper(v.str()));
}
Value f_lower(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "lower", {});
  return Value(py_lower(v.str()));
}
Value f_capitalize(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "capitalize", {});
  return Value(py_capitalize(v.str()));
}
Value f_title(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "title", {});
  // Jinja capitalises each run that follows '-', whitespace or an opening bracket.
  std::string s = v.str(), out;
  bool start = true;
  for (char c : s) {
    bool delim = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || std::isspace(static_cast<unsigned char>(c));
    if (delim) {
      out += c;
      start = true;
      continue;
    }
    unsigned char u = static_cast<unsigned char>(c);
    out += static_cast<char>(start ? std::toupper(u) : std::tolower(u));
    start = false;
  }
  return Value(std::move(out));
}
Value f_length(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "length", {});
  switch (v.kind()) {
    case Value::Kind::kUndefined: return Value(0);
    case Value::Kind::kString: return Value(static_cast<int64_t>(utf8_length(v.as_string())));
    case Value::Kind::kList: return Value(static_cast<int64_t>(v.as_list().size()));
    case Value::Kind::kDict: return Value(static_cast<int64_t>(v.as_dict().size()));
    default: fail("object of type '" + v.type_name() + "' has no len()");
  }
}
Value f_default(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "default", {"default_value", "boolean"});
  bool use_default = v.is_undefined() || (r.get_bool(1, false) && !v.truthy());
  return use_default ? r.get_or(0, Value(std::string())) : v;
}
Value f_tojson(Evaluator& ev, const Value& v, CallArgs& a) {
  ArgReader r(a, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  if (r.get_bool(0, false)) fail("tojson(ensure_ascii=True) is not supported");
  if (r.has(2) && !r.get(2).is_none()) fail("tojson(separators=...) is not supported");
  if (v.is_undefined()) fail_undefined(v);
  int64_t indent = r.get_int(1, -1);
  if (indent > 64) fail("tojson: indent too large");
  std::string out = to_python_json(v, static_cast<int>(indent), r.get_bool(3, false));
  ev.check_size(out.size());
  return Value(std::move(out));
}
Value f_join(Evaluator& ev, const Value& v, CallArgs& a) {
  ArgReader r(a, "join", {"d", "attribute"});
  std::string sep = r.get_or(0, Value(std::string())).str();
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += (r.has(1) ? lookup_path(item, r.get(1).str()) : item).str();
    ev.check_size(out.size());
  }
  return Value(std::move(out));
}
Value f_first(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "first", {});
  ValueList items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}
Value f_last(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "last", {});
  ValueList items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}
Value f_list(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "list", {});
  return Value(iterate(v));
}
Value f_string(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "string", {});
  return Value(v.str());
}
Value f_safe(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "safe", {});
  return Value(v.str());
}
Value f_escape(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "escape", {});
  std::string out;
  for (char c : v.str()) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value(std::move(out));
}
Value f_int(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "int", {"default", "base"});
  Value fallback = r.get_or(0, Value(0));
  if (v.is_bool() || v.is_int()) return Value(v.as_int());
  if (v.is_float()) {
    double d = v.as_float();
    if (!std::isfinite(d) || std::fabs(d) > 9.2e18) return fallback;
    return Value(static_cast<int64_t>(std::trunc(d)));
  }
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), Value::undefined(), true, true);
    int base = static_cast<int>(r.get_int(1, 10));
    char* end = nullptr;
    errno = 0;
    long long x = std::strtoll(s.c_str(), &end, base);
    if (!s.empty() && *end == '\0' && errno == 0) return Value(static_cast<int64_t>(x));
    double d = std::strtod(s.c_str(), &end);  // Jinja retries through float()
    if (!s.empty() && *end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18) {
      return Value(static_cast<int64_t>(std::trunc(d)));
    }
  }
  return fallback;
}
Value f_float(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "float", {"default"});
  if (v.is_number()) return Value(v.as_float());
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), Value::undefined(), true, true);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0') return Value(d);
  }
  return r.get_or(0, Value(0.0));
}
Value f_items(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "items", {});
  if (v.is_undefined()) return Value(ValueList{});
  if (!v.is_dict()) fail("items filter: can only get item pairs from a mapping");
  ValueList out;
  for (const auto& [k, x] : v.as_dict().items()) out.push_back(Value::tuple(ValueList{Value(k), x}));
  return Value(std::move(out));
}
Value f_replace(Evaluator& ev, const Value& v, CallArgs& a) {
  ArgReader r(a, "replace", {"old", "new", "count"});
  return Value(py_replace(v.str(), r.get(0).str(), r.get(1).str(), r.get_int(2, -1), ev.limits().max_output_bytes));
}
Value f_abs(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "abs", {});
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) fail("integer overflow");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  fail("bad operand type for abs(): '" + v.type_name() + "'");
}
Value f_round(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "round", {"precision", "method"});
  if (!v.is_number()) fail("round filter: expected a number, got " + v.type_name());
  int64_t precision = r.get_int(0, 0);
  std::string how = r.get_string(1, "common");
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_float();
  if (how == "common") {
    if (v.is_int() || v.is_bool()) return Value(v.as_int());  // Python round(int, n) stays int
    return Value(std::nearbyint(x * scale) / scale);           // round-half-even, like Python
  }
  if (how == "ceil") return Value(std::ceil(x * scale) / scale);
  if (how == "floor") return Value(std::floor(x * scale) / scale);
  fail("round filter: method must be 'common', 'ceil' or 'floor'");
}
Value f_dictsort(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) fail("dictsort: expected a mapping, got " + v.type_name());
  bool cs = r.get_bool(0, false), rev = r.get_bool(2, false);
  std::string by = r.get_string(1, "key");
  if (by != "key" && by != "value") fail("dictsort: 'by' must be 'key' or 'value'");
  ValueList pairs;
  for (const auto& [k, x] : v.as_dict().items()) pairs.push_back(Value::tuple(ValueList{Value(k), x}));
  size_t idx = by == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& p, const Value& q) {
    int c = sort_compare(p.as_list()[idx], q.as_list()[idx], cs);
    return rev ? c > 0 : c < 0;
  });
  return Value(std::move(pairs));
}
Value f_sort(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "sort", {"reverse", "case_sensitive", "attribute"});
  bool rev = r.get_bool(0, false), cs = r.get_bool(1, false);
  ValueList items = iterate(v);
  std::string attr = r.has(2) ? r.get(2).str() : "";
  auto key = [&](const Value& x) { return attr.empty() ? x : lookup_path(x, attr); };
  std::stable_sort(items.begin(), items.end(), [&](const Value& p, const Value& q) {
    int c = sort_compare(key(p), key(q), cs);
    return rev ? c > 0 : c < 0;
  });
  return Value(std::move(items));
}
Value f_unique(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "unique", {"case_sensitive", "attribute"});
  bool cs = r.get_bool(0, false);
  std::string attr = r.has(1) ? r.get(1).str() : "";
  ValueList out, seen;
  for (const Value& item : iterate(v)) {
    Value k = attr.empty() ? item : lookup_path(item, attr);
    if (!cs && k.is_string()) k = Value(py_lower(k.as_string()));
    bool dup = std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return values_equal(s, k); });
    if (!dup) {
      seen.push_back(k);
      out.push_back(item);
    }
  }
  return Value(std::move(out));
}
Value f_reverse(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "reverse", {});
  if (v.is_string()) {
    std::vector<std::string> cs = utf8_chars(v.as_string());
    std::string out;
    for (auto it = cs.rbegin(); it != cs.rend(); ++it) out += *it;
    return Value(std::move(out));
  }
  ValueList items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value(std::move(items));
}
Value f_sum(Evaluator& ev, const Value& v, CallArgs& a) {
  ArgReader r(a, "sum", {"attribute", "start"});
  Value total = r.get_or(1, Value(0));
  std::string attr = r.has(0) ? r.get(0).str() : "";
  for (const Value& item : iterate(v)) total = binary_op("+", total, attr.empty() ? item : lookup_path(item, attr), ev);
  return total;
}
Value min_max(const Value& v, CallArgs& a, bool want_max) {
  ArgReader r(a, want_max ? "max" : "min", {"case_sensitive", "attribute"});
  bool cs = r.get_bool(0, false);
  std::string attr = r.has(1) ? r.get(1).str() : "";
  ValueList items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    Value x = attr.empty() ? items[i] : lookup_path(items[i], attr);
    Value y = attr.empty() ? items[best] : lookup_path(items[best], attr);
    int c = sort_compare(x, y, cs);
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}
Value f_min(Evaluator&, const Value& v, CallArgs& a) { return min_max(v, a, false); }
Value f_max(Evaluator&, const Value& v, CallArgs& a) { return min_max(v, a, true); }
Value f_indent(Evaluator&, const Value& v, CallArgs& a) {
  ArgReader r(a, "indent", {"width", "first", "blank"});
  Value w = r.get_or(0, Value(4));
  if (!w.is_string() && !w.is_int()) fail("indent: width must be an integer or a string");
  std::string pad = w.is_string() ? w.as_string() : std::string(static_cast<size_t>(std::clamp<int64_t>(w.as_int(), 0, 256)), ' ');
  bool first = r.get_bool(1, false), blank = r.get_bool(2, false);
  std::string s = v.str(), out;
  size_t pos = 0;
  bool line0 = true;
  while (pos <= s.size()) {
    size_t nl = s.find('\n', pos);
    std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    bool pad_it = line0 ? first : (blank || !py_strip(line, Value::undefined(), true, true).empty());
    if (pad_it) out += pad;
    out += line;
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
    line0 = false;
  }
  return Value(std::move(out));
}

// select/reject/selectattr/rejectattr share Jinja's select_or_reject.
Value select_impl(Evaluator& ev, const Value& v, CallArgs& a, bool by_attr, bool keep_matching) {
  size_t next = 0;
  std::string attr;
  if (by_attr) {
    if (a.positional.empty()) fail("selectattr/rejectattr need an attribute name");
    attr = a.positional[next++].str();
  }
  std::string test;
  if (next < a.positional.size()) test = a.positional[next++].str();
  CallArgs test_args;
  test_args.positional.assign(a.positional.begin() + static_cast<long>(next), a.positional.end());
  test_args.keyword = a.keyword;
  ValueList out;
  for (const Value& item : iterate(v)) {
    Value x = by_attr ? lookup_path(item, attr) : item;
    bool ok = test.empty() ? x.truthy() : apply_test(ev, test, x, test_args);
    if (ok == keep_matching) out.push_back(item);
  }
  return Value(std::move(out));
}
Value f_select(Evaluator& ev, const Value& v, CallArgs& a) { return select_impl(ev, v, a, false, true); }
Value f_reject(Evaluator& ev, const Value& v, CallArgs& a) { return select_impl(ev, v, a, false, false); }
Value f_selectattr(Evaluator& ev, const Value& v, CallArgs& a) { return select_impl(ev, v, a, true, true); }
Value f_rejectattr(Evaluator& ev, const Value& v, CallArgs& a) { return select_impl(ev, v, a, true, false); }

Value f_map(Evaluator& ev, const Value& v, CallArgs& a) {
  ValueList out;
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, x] : a.keyword) {
    if (k == "attribute") attribute = &x;
    else if (k == "default") fallback = &x;
  }
  if (attribute) {
    for (const Value& item : iterate(v)) {
      Value x = lookup_path(item, attribute->str());
      out.push_back(x.is_undefined() && fallback ? *fallback : x);
    }
    return Value(std::move(out));
  }
  if (a.positional.empty()) fail("map filter needs a filter name or attribute=");
  std::string filter = a.positional[0].str();
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const Value& item : iterate(v)) out.push_back(apply_filter(ev, filter, item, rest));
  return Value(std::move(out));
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"trim", f_trim},         {"upper", f_upper},         {"lower", f_lower},
      {"capitalize", f_capitalize}, {"title", f_title},     {"length", f_length},
      {"count", f_length},      {"default", f_default},     {"d", f_default},
      {"tojson", f_tojson},     {"join", f_join},           {"first", f_first},
      {"last", f_last},         {"list", f_list},           {"string", f_string},
      {"safe", f_safe},         {"escape", f_escape},       {"e", f_escape},
      {"int", f_int},           {"float", f_float},         {"items", f_items},
      {"replace", f_replace},   {"abs", f_abs},             {"round", f_round},
      {"dictsort", f_dictsort}, {"sort", f_sort},           {"unique", f_unique},
      {"reverse", f_reverse},   {"sum", f_sum},             {"min", f_min},
      {"max", f_max},           {"indent", f_indent},       {"select", f_select},
      {"reject", f_reject},     {"selectattr", f_selectattr}, {"rejectattr", f_rejectattr},
      {"map", f_map},
  };
  return table;
}

// ---- tests --------------------------------------------------------------------------

const Value& test_arg(const CallArgs& a, const char* test) {
  if (a.positional.empty()) fail(std::string("test '") + test + "' needs an argument");
  return a.positional[0];
}
bool t_defined(Evaluator&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Evaluator&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(Evaluator&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_string(Evaluator&, const Value& v, CallArgs&) { return v.is_string(); }
bool t_number(Evaluator&, const Value& v, CallArgs&) { return v.is_number(); }
bool t_integer(Evaluator&, const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(Evaluator&, const Value& v, CallArgs&) { return v.is_float(); }
bool t_boolean(Evaluator&, const Value& v, CallArgs&) { return v.is_bool(); }
bool t_true(Evaluator&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(Evaluator&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_mapping(Evaluator&, const Value& v, CallArgs&) { return v.is_dict(); }
// Jinja's Undefined defines __iter__, so it counts as iterable.
bool t_iterable(Evaluator&, const Value& v, CallArgs&) { return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined(); }
bool t_sequence(Evaluator&, const Value& v, CallArgs&) { return v.is_list() || v.is_dict() || v.is_string(); }
bool t_callable(Evaluator&, const Value& v, CallArgs&) { return v.is_callable(); }
bool t_in(Evaluator&, const Value& v, CallArgs& a) { return value_contains(test_arg(a, "in"), v); }
bool t_eq(Evaluator&, const Value& v, CallArgs& a) { return values_equal(v, test_arg(a, "eq")); }
bool t_ne(Evaluator&, const Value& v, CallArgs& a) { return !values_equal(v, test_arg(a, "ne")); }
bool t_lt(Evaluator&, const Value& v, CallArgs& a) { return values_compare(v, test_arg(a, "lt")) < 0; }
bool t_le(Evaluator&, const Value& v, CallArgs& a) { return values_compare(v, test_arg(a, "le")) <= 0; }
bool t_gt(Evaluator&, const Value& v, CallArgs& a) { return values_compare(v, test_arg(a, "gt")) > 0; }
bool t_ge(Evaluator&, const Value& v, CallArgs& a) { return values_compare(v, test_arg(a, "ge")) >= 0; }
bool t_sameas(Evaluator&, const Value& v, CallArgs& a) {
  const Value& o = test_arg(a, "sameas");
  if (v.kind() != o.kind()) return false;
  return (v.is_none() || v.is_bool() || v.is_undefined()) ? values_equal(v, o) : false;
}
int64_t int_operand(const Value& v, const char* test) {
  if (!v.is_int() && !v.is_bool()) fail(std::string("test '") + test + "' needs an integer");
  return v.as_int();
}
bool t_odd(Evaluator&, const Value& v, CallArgs&) { return int_operand(v, "odd") % 2 != 0; }
bool t_even(Evaluator&, const Value& v, CallArgs&) { return int_operand(v, "even") % 2 == 0; }
bool t_divisibleby(Evaluator&, const Value& v, CallArgs& a) {
  int64_t d = int_operand(test_arg(a, "divisibleby"), "divisibleby");
  if (d == 0) fail("integer division or modulo by zero");
  return int_operand(v, "divisibleby") % d == 0;
}
bool t_lower(Evaluator&, const Value& v, CallArgs&) { return v.is_string() && py_lower(v.as_string()) == v.as_string(); }
bool t_upper(Evaluator&, const Value& v, CallArgs&) { return v.is_string() && py_upper(v.as_string()) == v.as_string(); }

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none},       {"string", t_string},
      {"number", t_number},   {"integer", t_integer},     {"float", t_float},     {"boolean", t_boolean},
      {"true", t_true},       {"false", t_false},         {"mapping", t_mapping}, {"iterable", t_iterable},
      {"sequence", t_sequence}, {"callable", t_callable}, {"in", t_in},           {"eq", t_eq},
      {"equalto", t_eq},      {"==", t_eq},               {"ne", t_ne},           {"!=", t_ne},
      {"lt", t_lt},           {"lessthan", t_lt},         {"<", t_lt},            {"le", t_le},
      {"<=", t_le},           {"gt", t_gt},               {"greaterthan", t_gt},  {">", t_gt},
      {"ge", t_ge},           {">=", t_ge},               {"sameas", t_sameas},   {"odd", t_odd},
      {"even", t_even},       {"divisibleby", t_divisibleby}, {"lower", t_lower}, {"upper", t_upper},
  };
  return table;
}

}  // namespace

Value apply_filter(Evaluator& ev, const std::string& name, const Value& input, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) fail("unknown filter '" + name + "'");
  return it->second(ev, input, args);
}

bool apply_test(Evaluator& ev, const std::string& name, const Value& v, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) fail("unknown test '" + name + "'");
  static const char* const kTakesArgument[] = {"in", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le",
                                               "<=", "gt", "greaterthan", ">", "ge", ">=", "sameas", "divisibleby"};
  bool takes_arg = std::find(std::begin(kTakesArgument), std::end(kTakesArgument), name) != std::end(kTakesArgument);
  size_t given = args.positional.size() + args.keyword.size();
  if (given != (takes_arg ? 1u : 0u)) {
    fail("test '" + name + "' takes " + (takes_arg ? "1 argument" : "no arguments") + ", " + std::to_string(given) + " given");
  }
  return it->second(ev, v, args);
}

}  // namespace flashlm::chat
