// Python str/dict methods that templates call, the globals transformers adds to the
// Jinja environment, and the string helpers shared with the filters.
#include <algorithm>
#include <cctype>
#include <ctime>

#include "chat/builtins.h"
#include "chat/builtins_util.h"
#include "chat/evaluator.h"

namespace flashlm::chat {

// ---- argument binding ---------------------------------------------------------------

ArgReader::ArgReader(const CallArgs& args, std::string fn, std::initializer_list<const char*> params)
    : args_(args), fn_(std::move(fn)) {
  for (const char* p : params) params_.emplace_back(p);
  if (args.positional.size() > params_.size()) {
    fail(fn_ + "() takes at most " + std::to_string(params_.size()) + " arguments (" +
         std::to_string(args.positional.size()) + " given)");
  }
  for (const auto& [k, _] : args.keyword) {
    auto it = std::find(params_.begin(), params_.end(), k);
    if (it == params_.end()) fail(fn_ + "() got an unexpected keyword argument '" + k + "'");
    if (static_cast<size_t>(it - params_.begin()) < args.positional.size()) {
      fail(fn_ + "() got multiple values for argument '" + k + "'");
    }
  }
}

Value ArgReader::get(size_t i) const {
  if (i < args_.positional.size()) return args_.positional[i];
  if (i < params_.size()) {
    for (const auto& [k, v] : args_.keyword) {
      if (k == params_[i]) return v;
    }
  }
  return Value::undefined();
}

std::string ArgReader::get_string(size_t i, const std::string& fallback) const {
  Value v = get(i);
  if (v.is_undefined()) return fallback;
  if (!v.is_string()) fail(fn_ + "(): argument '" + params_[i] + "' must be a string, not " + v.type_name());
  return v.as_string();
}

int64_t ArgReader::get_int(size_t i, int64_t fallback) const {
  Value v = get(i);
  if (v.is_undefined() || v.is_none()) return fallback;
  if (!v.is_int() && !v.is_bool()) fail(fn_ + "(): argument '" + params_[i] + "' must be an integer, not " + v.type_name());
  return v.as_int();
}

// ---- string helpers -----------------------------------------------------------------

bool is_py_space(const std::string& ch) {
  if (ch.size() != 1) return ch == "\xc2\x85" || ch == "\xc2\xa0" || ch == "\xe3\x80\x80";
  char c = ch[0];
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

std::string py_strip(const std::string& s, const Value& chars, bool left, bool right) {
  std::vector<std::string> cs = utf8_chars(s);
  std::vector<std::string> set;
  bool whitespace = chars.is_undefined() || chars.is_none();
  if (!whitespace) {
    if (!chars.is_string()) fail("strip arg must be None or str");
    set = utf8_chars(chars.as_string());
  }
  auto strip_me = [&](const std::string& c) {
    return whitespace ? is_py_space(c) : std::find(set.begin(), set.end(), c) != set.end();
  };
  size_t b = 0, e = cs.size();
  if (left) {
    while (b < e && strip_me(cs[b])) ++b;
  }
  if (right) {
    while (e > b && strip_me(cs[e - 1])) --e;
  }
  std::string out;
  for (size_t i = b; i < e; ++i) out += cs[i];
  return out;
}

namespace {

// Simple case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic: the
// scripts chat content commonly uses. Python maps all of Unicode; other code points
// are left unchanged here.
uint32_t map_case(uint32_t c, bool upper) {
  if (upper) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
    if (c == 0xff) return 0x178;
    if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17f) {
      bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
      if (odd_lower ? (c % 2 == 0) : (c % 2 == 1)) return c - 1;
      return c;
    }
    if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) return c - 32;
    if (c >= 0x430 && c <= 0x44f) return c - 32;
    if (c >= 0x450 && c <= 0x45f) return c - 80;
    return c;
  }
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 32;
  if (c == 0x178) return 0xff;
  if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17f) {
    bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
    if (odd_lower ? (c % 2 == 1) : (c % 2 == 0)) return c + 1;
    return c;
  }
  if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
  if (c >= 0x410 && c <= 0x42f) return c + 32;
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  return c;
}

std::string case_convert(const std::string& s, bool upper) {
  std::string out;
  out.reserve(s.size());
  for (const std::string& ch : utf8_chars(s)) {
    unsigned char b0 = static_cast<unsigned char>(ch[0]);
    uint32_t c;
    if (ch.size() == 1) {
      c = b0;
    } else if (ch.size() == 2) {
      c = ((b0 & 0x1fu) << 6) | (static_cast<unsigned char>(ch[1]) & 0x3fu);
    } else {
      out += ch;  // outside the mapped ranges
      continue;
    }
    uint32_t m = map_case(c, upper);
    if (m < 0x80) {
      out += static_cast<char>(m);
    } else {
      out += static_cast<char>(0xc0 | (m >> 6));
      out += static_cast<char>(0x80 | (m & 0x3f));
    }
  }
  return out;
}

}  // namespace

std::string py_upper(std::string s) { return case_convert(s, true); }

std::string py_lower(std::string s) { return case_convert(s, false); }

std::string py_capitalize(const std::string& s) {
  std::vector<std::string> cs = utf8_chars(s);
  if (cs.empty()) return s;
  std::string out = py_upper(cs[0]);
  for (size_t i = 1; i < cs.size(); ++i) out += py_lower(cs[i]);
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count,
                       size_t max_bytes) {
  std::string out;
  auto check = [&] {
    if (out.size() > max_bytes) fail("replace() result exceeds the output size limit");
  };
  if (old.empty()) {  // Python inserts `repl` between characters and at both ends
    std::vector<std::string> cs = utf8_chars(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cs.size(); ++i) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i < cs.size()) out += cs[i];
      check();
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t hit = s.find(old, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += repl;
    check();
    pos = hit + old.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  check();
  return out;
}

ValueList py_split(const std::string& s, const Value& sep, int64_t maxsplit) {
  ValueList out;
  if (sep.is_undefined() || sep.is_none()) {
    std::vector<std::string> cs = utf8_chars(s);
    size_t i = 0;
    while (true) {
      while (i < cs.size() && is_py_space(cs[i])) ++i;
      if (i >= cs.size()) break;
      std::string word;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        for (; i < cs.size(); ++i) word += cs[i];
        out.emplace_back(std::move(word));  // Python keeps the remainder as is
        break;
      }
      while (i < cs.size() && !is_py_space(cs[i])) word += cs[i++];
      out.emplace_back(std::move(word));
    }
    return out;
  }
  if (!sep.is_string()) fail("split(): separator must be a string or None");
  const std::string& d = sep.as_string();
  if (d.empty()) fail("split(): empty separator");
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    size_t hit = s.find(d, pos);
    if (hit == std::string::npos) break;
    out.emplace_back(s.substr(pos, hit - pos));
    pos = hit + d.size();
  }
  out.emplace_back(s.substr(pos));
  return out;
}

namespace {

Value method(std::string name, NativeFn fn) {
  return Value(std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)}));
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) fail(std::string(prefix ? "startswith" : "endswith") + " first arg must be str or a tuple of str");
    const std::string& x = a.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list()) {
    for (const Value& a : affix.as_list()) {
      if (one(a)) return true;
    }
    return false;
  }
  return one(affix);
}

std::string py_title(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(prev_cased ? std::tolower(u) : std::toupper(u));
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return out;
}

Value string_method(const Value& obj, const std::string& name) {
  std::string s = obj.as_string();
  const std::string qual = "str." + name;
  if (name == "startswith" || name == "endswith") {
    bool prefix = name == "startswith";
    return method(qual, [s, prefix, qual](Evaluator&, CallArgs& a) {
      ArgReader r(a, qual, {"prefix"});
      if (!r.has(0)) fail(qual + "() takes at least 1 argument");
      return Value(affix_match(s, r.get(0), prefix));
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool left = name != "rstrip", right = name != "lstrip";
    return method(qual, [s, left, right, qual](Evaluator&, CallArgs& a) {
      ArgReader r(a, qual, {"chars"});
      return Value(py_strip(s, r.get(0), left, right));
    });
  }
  if (name == "split") {
    return method(qual, [s, qual](Evaluator&, CallArgs& a) {
      ArgReader r(a, qual, {"sep", "maxsplit"});
      return Value(py_split(s, r.get(0), r.get_int(1, -1)));
    });
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    return method(qual, [s, name, qual](Evaluator&, CallArgs& a) {
      ArgReader r(a, qual, {});
      if (name == "upper") return Value(py_upper(s));
      if (name == "lower") return Value(py_lower(s));
      if (name == "title") return Value(py_title(s));
      return Value(py_capitalize(s));
    });
  }
  if (name == "replace") {
    return method(qual, [s, qual](Evaluator& ev, CallArgs& a) {
      ArgReader r(a, qual, {"old", "new", "count"});
      if (!r.has(1)) fail(qual + "() takes at least 2 arguments");
      return Value(py_replace(s, r.get_string(0, ""), r.get_string(1, ""), r.get_int(2, -1), ev.limits().max_output_bytes));
    });
  }
  if (name == "find" || name == "count") {
    return method(qual, [s, name, qual](Evaluator&, CallArgs& a) {
      ArgReader r(a, qual, {"sub"});
      std::string sub = r.get_string(0, "");
      if (name == "find") {
        size_t hit = s.find(sub);
        return Value(hit == std::string::npos ? int64_t{-1} : static_cast<int64_t>(utf8_length(s.substr(0, hit))));
      }
      if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(s) + 1));
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    });
  }
  if (name == "join") {
    return method(qual, [s, qual](Evaluator& ev, CallArgs& a) {
      ArgReader r(a, qual, {"iterable"});
      std::string out;
      bool first = true;
      for (const Value& v : iterate(r.get(0))) {
        if (!v.is_string()) fail("sequence item: expected str instance, " + v.type_name() + " found");
        if (!first) out += s;
        first = false;
        out += v.as_string();
        ev.check_size(out.size());
      }
      return Value(std::move(out));
    });
  }
  if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum") {
    return method(qual, [s, name, qual](Evaluator&, CallArgs& a) {
      ArgReader r(a, qual, {});
      if (s.empty()) return Value(false);
      for (unsigned char c : s) {
        bool ok = name == "isdigit" ? std::isdigit(c) != 0
                  : name == "isspace" ? std::isspace(c) != 0
                  : name == "isalpha" ? std::isalpha(c) != 0
                                      : std::isalnum(c) != 0;
        if (!ok) return Value(false);
      }
      return Value(true);
    });
  }
  if (name == "splitlines") {
    return method(qual, [s, qual](Evaluator&, CallArgs& a) {
      ArgReader r(a, qual, {});
      ValueList out;
      size_t pos = 0;
      while (pos < s.size()) {
        size_t nl = s.find('\n', pos);
        if (nl == std::string::npos) nl = s.size();
        out.emplace_back(s.substr(pos, nl - pos));
        pos = nl + 1;
      }
      return Value(std::move(out));
    });
  }
  return Value::undefined("'str object' has no attribute '" + name + "'");
}

Value dict_method(const Value& obj, const std::string& name) {
  const std::string qual = "dict." + name;
  if (name == "get") {
    return method(qual, [obj, qual](Evaluator&, CallArgs& a) {
      ArgReader r(a, qual, {"key", "default"});
      Value key = r.get(0);
      if (key.is_string()) {
        if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
      }
      return r.get_or(1, Value::none());
    });
  }
  if (name == "items" || name == "keys" || name == "values") {
    return method(qual, [obj, name, qual](Evaluator&, CallArgs& a) {
      ArgReader r(a, qual, {});
      ValueList out;
      for (const auto& [k, v] : obj.as_dict().items()) {
        if (name == "items") out.push_back(Value::tuple(ValueList{Value(k), v}));
        else if (name == "keys") out.emplace_back(k);
        else out.push_back(v);
      }
      return Value(std::move(out));
    });
  }
  return Value::undefined();
}

}  // namespace

Value get_method(const Value& obj, const std::string& name) {
  if (obj.is_string()) return string_method(obj, name);
  if (obj.is_dict()) return dict_method(obj, name);
  return Value::undefined();
}

// ---- globals ------------------------------------------------------------------------

ValueDict make_globals() {
  ValueDict g;
  g.set("range", method("range", [](Evaluator& ev, CallArgs& a) {
    if (!a.keyword.empty()) fail("range() takes no keyword arguments");
    ArgReader r(a, "range", {"start", "stop", "step"});
    int64_t start = 0, stop, step = r.get_int(2, 1);
    if (a.positional.empty()) fail("range expected at least 1 argument, got 0");
    if (a.positional.size() == 1) {
      stop = r.get_int(0, 0);
    } else {
      start = r.get_int(0, 0);
      stop = r.get_int(1, 0);
    }
    if (step == 0) fail("range() arg 3 must not be zero");
    ValueList out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      // Same bound as the output: a range this long could never be rendered anyway.
      if (out.size() >= ev.limits().max_output_bytes / 16) fail("range() too large");
      out.emplace_back(i);
    }
    return Value(std::move(out));
  }));
  g.set("namespace", method("namespace", [](Evaluator&, CallArgs& a) {
    auto ns = std::make_shared<Namespace>();
    for (const Value& init : a.positional) {
      if (!init.is_dict()) fail("namespace() positional arguments must be dicts");
      for (const auto& [k, v] : init.as_dict().items()) ns->attrs.set(k, v);
    }
    for (const auto& [k, v] : a.keyword) ns->attrs.set(k, v);
    return Value(std::move(ns));
  }));
  g.set("dict", method("dict", [](Evaluator&, CallArgs& a) {
    ValueDict d;
    for (const Value& init : a.positional) {
      if (!init.is_dict()) fail("dict() positional arguments must be dicts");
      for (const auto& [k, v] : init.as_dict().items()) d.set(k, v);
    }
    for (const auto& [k, v] : a.keyword) d.set(k, v);
    return Value(std::move(d));
  }));
  g.set("raise_exception", method("raise_exception", [](Evaluator&, CallArgs& a) -> Value {
    ArgReader r(a, "raise_exception", {"message"});
    fail("template raised an exception: " + r.get(0).str());
  }));
  g.set("strftime_now", method("strftime_now", [](Evaluator& ev, CallArgs& a) {
    ArgReader r(a, "strftime_now", {"format"});
    std::string fmt = r.get_string(0, "");
    std::time_t t = ev.limits().now ? *ev.limits().now : std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    if (fmt.empty()) return Value(std::string());
    std::string buf(fmt.size() * 8 + 64, '\0');
    size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
    buf.resize(n);
    return Value(std::move(buf));
  }));
  return g;
}

}  // namespace flashlm::chat
