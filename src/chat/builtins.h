// The library a chat template sees: Jinja filters and tests, the Python str/dict
// methods templates call (`.strip()`, `.get()`, ...), and the globals transformers
// provides (`raise_exception`, `strftime_now`, `namespace`, `range`, `dict`).
#pragma once

#include <string>

#include "chat/value.h"

namespace flashlm::chat {

class Evaluator;

Value apply_filter(Evaluator& ev, const std::string& name, const Value& input, CallArgs& args);
bool apply_test(Evaluator& ev, const std::string& name, const Value& v, CallArgs& args);
// A bound method of a str/dict/loop value, or an undefined value naming what is missing.
Value get_method(const Value& obj, const std::string& name);
ValueDict make_globals();

}  // namespace flashlm::chat
