// Helpers shared by the filter/test table (filters.cpp) and the methods/globals
// (methods.cpp): Python-style argument binding and string primitives.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "chat/value.h"

namespace flashlm::chat {

// Binds call arguments to a fixed parameter list the way Python does (positional
// first, then by keyword) and rejects extras, so a typo in a template is an error.
class ArgReader {
 public:
  ArgReader(const CallArgs& args, std::string fn, std::initializer_list<const char*> params);
  // The argument for parameter `i`, or undefined when it was not passed.
  Value get(size_t i) const;
  Value get_or(size_t i, Value fallback) const {
    Value v = get(i);
    return v.is_undefined() ? fallback : v;
  }
  bool has(size_t i) const { return !get(i).is_undefined(); }
  std::string get_string(size_t i, const std::string& fallback) const;
  int64_t get_int(size_t i, int64_t fallback) const;
  bool get_bool(size_t i, bool fallback) const { return has(i) ? get(i).truthy() : fallback; }

 private:
  const CallArgs& args_;
  std::string fn_;
  std::vector<std::string> params_;
};

bool is_py_space(const std::string& ch);
// str.strip/lstrip/rstrip; `chars` undefined or None means whitespace.
std::string py_strip(const std::string& s, const Value& chars, bool left, bool right);
std::string py_upper(std::string s);
std::string py_lower(std::string s);
std::string py_capitalize(const std::string& s);
std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count,
                       size_t max_bytes);
ValueList py_split(const std::string& s, const Value& sep, int64_t maxsplit);

}  // namespace flashlm::chat
