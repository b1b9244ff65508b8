#include "server/tool_calls.h"

#include <cctype>
#include <cstdint>
#include <set>

#include "grammar/json_schema.h"
#include "server/request_fields.h"
#include "util/xxhash64.h"

namespace flashlm::server {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Err = std::optional<ApiError>;

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralCalls = "[TOOL_CALLS]";

// A call id as Mistral's templates require it (9 alphanumerics): kept when it is one,
// else derived from a hash of it, so a call and its result keep matching.
std::string mistral_id(const std::string& id) {
  bool ok = id.size() == 9;
  for (char c : id) ok = ok && std::isalnum(static_cast<unsigned char>(c));
  if (ok) return id;
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t h = xxh64(id.data(), id.size());
  std::string out;
  for (int i = 0; i < 9; ++i, h /= 62) out.push_back(kAlphabet[h % 62]);
  return out;
}

bool valid_function_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

// A tool's parameters as the grammar sees them: {"type": "object"} when absent (any
// arguments object), unenforceable assertions dropped unless the tool is strict.
ojson parameters_of(const ToolSpec& t) {
  auto it = t.function.find("parameters");
  ojson p = it == t.function.end() || it->is_null() ? ojson{{"type", "object"}} : *it;
  return t.strict ? p : grammar::drop_unenforceable_keywords(p);
}

// Moves the schema's $defs / definitions into *defs under `prefix` and points its $refs
// there, so several tools' schemas live in one document without their names colliding.
void rewrite_refs(ojson* s, const std::string& prefix) {
  if (s->is_array()) {
    for (auto& v : *s) rewrite_refs(&v, prefix);
    return;
  }
  if (!s->is_object()) return;
  for (auto it = s->begin(); it != s->end(); ++it) {
    if (it.key() == "$ref" && it->is_string()) {
      const std::string r = it->get<std::string>();
      if (r == "#") {
        *it = "#/$defs/" + prefix + "root";
      } else {
        for (const std::string p : {"#/$defs/", "#/definitions/"}) {
          if (r.rfind(p, 0) == 0) *it = "#/$defs/" + prefix + r.substr(p.size());
        }
      }
    } else {
      rewrite_refs(&*it, prefix);
    }
  }
}

ojson hoisted(ojson params, const std::string& prefix, ojson* defs) {
  for (const char* key : {"$defs", "definitions"}) {
    if (auto it = params.find(key); it != params.end()) {
      if (it->is_object()) {
        for (auto d = it->begin(); d != it->end(); ++d) {
          ojson body = d.value();
          rewrite_refs(&body, prefix);
          (*defs)[prefix + d.key()] = std::move(body);
        }
      }
      params.erase(key);
    }
  }
  rewrite_refs(&params, prefix);
  (*defs)[prefix + "root"] = params;  // the target of "$ref": "#" inside this tool
  return params;
}

// The JSON Schema of one call object, {"name": ..., "arguments": {...}} (Llama 3 says
// "parameters"), any offered tool (or only the named one).
ojson call_schema(const ToolRequest& t, const char* args_key, ojson* defs) {
  ojson alts = ojson::array();
  for (size_t i = 0; i < t.tools.size(); ++i) {
    const ToolSpec& spec = t.tools[i];
    if (t.choice == ToolChoice::kNamed && spec.name != t.named) continue;
    ojson props = ojson::object();
    props["name"] = {{"const", spec.name}};
    props[args_key] = hoisted(parameters_of(spec), "t" + std::to_string(i) + "-", defs);
    alts.push_back({{"type", "object"},
                    {"properties", std::move(props)},
                    {"required", {"name", args_key}},
                    {"additionalProperties", false}});
  }
  return alts.size() == 1 ? alts[0] : ojson{{"anyOf", std::move(alts)}};
}

std::string generic_system_prompt(const ToolRequest& t) {
  std::string s = "You can call these tools (each with the JSON Schema of its arguments):\n";
  for (const ToolSpec& spec : t.tools) s += spec.function.dump() + "\n";
  s += "\nReply with one JSON object and nothing else: {\"tool_calls\": [{\"name\": <tool name>, \"arguments\": "
       "<arguments object>}]} to call ";
  s += t.parallel ? "one or more tools" : "one tool";
  if (t.choice == ToolChoice::kAuto) s += ", or {\"response\": <your answer as a string>} to answer directly";
  s += ".";
  if (t.choice == ToolChoice::kRequired) s += " You must call a tool.";
  if (t.choice == ToolChoice::kNamed) s += " You must call the tool '" + t.named + "'.";
  return s;
}

// arguments as a JSON value where they parse, else the text itself.
json arguments_value(const std::string& text) {
  json v = json::parse(text, nullptr, false);
  return v.is_discarded() ? json(text) : v;
}

std::string trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool offered(const ToolRequest& t, const std::string& name) {
  for (const ToolSpec& s : t.tools) {
    if (s.name == name) return true;
  }
  return false;
}

// {"name": ..., "arguments": ...} -> a call, when it names an offered tool.
std::optional<ParsedCall> call_from(const json& v, const ToolRequest& t) {
  if (!v.is_object()) return std::nullopt;
  auto n = v.find("name");
  if (n == v.end() || !n->is_string() || !offered(t, n->get<std::string>())) return std::nullopt;
  auto a = v.find("arguments");
  if (a == v.end()) a = v.find("parameters");  // Llama 3's spelling
  ParsedCall c;
  c.name = n->get<std::string>();
  if (a == v.end() || a->is_null()) {
    c.arguments = "{}";
  } else if (a->is_string() && !json::parse(a->get<std::string>(), nullptr, false).is_discarded()) {
    c.arguments = a->get<std::string>();  // already JSON text
  } else {
    c.arguments = a->dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return c;
}

ToolOutput parse_generic(std::string_view text, const ToolRequest& t) {
  ToolOutput out;
  const json v = json::parse(text.begin(), text.end(), nullptr, false);
  if (v.is_object()) {
    if (auto tc = v.find("tool_calls"); tc != v.end() && tc->is_array()) {
      for (const json& c : *tc) {
        if (auto call = call_from(c, t)) out.calls.push_back(std::move(*call));
      }
      if (!out.calls.empty()) return out;
    }
    if (auto r = v.find("response"); r != v.end() && r->is_string()) {
      out.content = r->get<std::string>();
      return out;
    }
  }
  out.content = std::string(text);  // not the format (cut short, or another shape): as written
  return out;
}

// One call object, the whole reply (after Llama's <|python_tag|>, if any).
ToolOutput parse_llama3(std::string_view text, const ToolRequest& t) {
  ToolOutput out;
  std::string body = trim(text);
  if (std::string_view(body).substr(0, kPythonTag.size()) == kPythonTag) body = trim(body.substr(kPythonTag.size()));
  if (std::optional<ParsedCall> call = call_from(json::parse(body, nullptr, false), t)) {
    out.calls.push_back(std::move(*call));
  } else {
    out.content = std::string(text);
  }
  return out;
}

// [TOOL_CALLS] and a JSON array of call objects (the marker may be a control token the
// detokenizer leaves out, so the array alone counts too).
ToolOutput parse_mistral(std::string_view text, const ToolRequest& t) {
  ToolOutput out;
  std::string body = trim(text);
  if (std::string_view(body).substr(0, kMistralCalls.size()) == kMistralCalls) {
    body = trim(body.substr(kMistralCalls.size()));
  }
  const json v = json::parse(body, nullptr, false);
  if (v.is_array()) {
    for (const json& c : v) {
      if (auto call = call_from(c, t)) out.calls.push_back(std::move(*call));
    }
  }
  if (out.calls.empty()) out.content = std::string(text);
  return out;
}

ToolOutput parse_hermes(std::string_view text, const ToolRequest& t) {
  ToolOutput out;
  std::string rest;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    const size_t body = open + kOpen.size();
    const size_t close = text.find(kClose, body);
    const size_t body_end = close == std::string_view::npos ? text.size() : close;
    const json v = json::parse(trim(text.substr(body, body_end - body)), nullptr, false);
    std::optional<ParsedCall> call = call_from(v, t);
    if (!call) {  // not a call of an offered tool: it stays text
      rest += text.substr(pos, body - pos);
      pos = body;
      continue;
    }
    rest += text.substr(pos, open - pos);
    out.calls.push_back(std::move(*call));
    pos = close == std::string_view::npos ? text.size() : close + kClose.size();
  }
  rest += text.substr(std::min(pos, text.size()));
  if (out.calls.empty()) {
    out.content = std::string(text);
  } else if (std::string c = trim(rest); !c.empty()) {
    out.content = std::move(c);
  }
  return out;
}

}  // namespace

ToolFormat tool_format_of(std::string_view template_source) {
  if (template_source.find("tools") == std::string_view::npos) return ToolFormat::kGeneric;
  if (template_source.find(kOpen) != std::string_view::npos) return ToolFormat::kHermes;
  if (template_source.find(kPythonTag) != std::string_view::npos) return ToolFormat::kLlama3;
  if (template_source.find(kMistralCalls) != std::string_view::npos) return ToolFormat::kMistral;
  return ToolFormat::kGeneric;
}

Err parse_tools(const json& body, const ojson* ordered, ToolRequest* out) {
  *out = ToolRequest{};
  if (const json* tools = field(body, "tools")) {
    if (!tools->is_array()) return type_error("tools", "an array", *tools);
    if (tools->size() > static_cast<size_t>(kMaxTools)) {
      return value_error("tools", "at most " + std::to_string(kMaxTools) + " tools are allowed.");
    }
    const ojson* otools = nullptr;
    if (ordered != nullptr && ordered->is_object()) {
      auto it = ordered->find("tools");
      if (it != ordered->end() && it->is_array() && it->size() == tools->size()) otools = &*it;
    }
    std::set<std::string> names;
    for (size_t i = 0; i < tools->size(); ++i) {
      const std::string p = "tools[" + std::to_string(i) + "]";
      const json& t = (*tools)[i];
      if (!t.is_object()) return type_error(p, "an object", t);
      const json* type = field(t, "type");
      if (type == nullptr) return missing_error(p + ".type");
      if (*type != "function") {
        return value_error(p + ".type", "only 'function' tools are supported, got " + type->dump() + ".");
      }
      const json* fn = field(t, "function");
      if (fn == nullptr) return missing_error(p + ".function");
      if (!fn->is_object()) return type_error(p + ".function", "an object", *fn);
      const json* name = field(*fn, "name");
      if (name == nullptr) return missing_error(p + ".function.name");
      if (!name->is_string()) return type_error(p + ".function.name", "a string", *name);
      ToolSpec spec;
      spec.name = name->get<std::string>();
      if (!valid_function_name(spec.name)) {
        return value_error(p + ".function.name", "'" + spec.name +
                                                     "' must be 1 to 64 characters of a-z, A-Z, 0-9, underscores "
                                                     "and dashes.");
      }
      if (!names.insert(spec.name).second) {
        return value_error(p + ".function.name", "the name '" + spec.name + "' is used by two tools.");
      }
      if (const json* d = field(*fn, "description"); d != nullptr && !d->is_string()) {
        return type_error(p + ".function.description", "a string", *d);
      }
      const json* params = field(*fn, "parameters");
      if (params != nullptr && !params->is_object()) return type_error(p + ".function.parameters", "an object", *params);
      if (const json* s = field(*fn, "strict")) {
        if (!s->is_boolean()) return type_error(p + ".function.strict", "a boolean", *s);
        spec.strict = s->get<bool>();
      }
      spec.function = otools != nullptr && (*otools)[i].contains("function") ? (*otools)[i]["function"]
                                                                              : ojson::parse(fn->dump());
      spec.function.erase("strict");
      // The schema must compile even where no grammar is needed yet: a call the output
      // can never satisfy is better refused now.
      if (Result<std::string> g = grammar::json_schema_to_gbnf(parameters_of(spec)); !g) {
        return value_error(p + ".function.parameters", g.message());
      }
      out->tools.push_back(std::move(spec));
    }
  }
  if (const json* tc = field(body, "tool_choice")) {
    if (tc->is_string()) {
      const std::string c = tc->get<std::string>();
      if (c == "none") {
        out->choice = ToolChoice::kNone;
      } else if (c == "auto") {
        out->choice = ToolChoice::kAuto;
      } else if (c == "required") {
        out->choice = ToolChoice::kRequired;
      } else {
        return value_error("tool_choice", "'" + c + "' is not one of ['none', 'auto', 'required'].");
      }
    } else if (tc->is_object()) {
      const json* type = field(*tc, "type");
      if (type == nullptr || *type != "function") {
        return value_error("tool_choice.type", "only {\"type\": \"function\", \"function\": {\"name\": ...}} is "
                                               "supported.");
      }
      const json* fn = field(*tc, "function");
      const json* name = fn != nullptr && fn->is_object() ? field(*fn, "name") : nullptr;
      if (name == nullptr || !name->is_string()) return missing_error("tool_choice.function.name");
      out->choice = ToolChoice::kNamed;
      out->named = name->get<std::string>();
      if (!offered(*out, out->named)) {
        return value_error("tool_choice.function.name", "no tool named '" + out->named + "' is in 'tools'.");
      }
    } else {
      return type_error("tool_choice", "a string or an object", *tc);
    }
    if (out->tools.empty() && out->choice != ToolChoice::kNone && out->choice != ToolChoice::kAuto) {
      return value_error("tool_choice", "'tool_choice' requires 'tools'.");
    }
  }
  if (const json* p = field(body, "parallel_tool_calls")) {
    if (!p->is_boolean()) return type_error("parallel_tool_calls", "a boolean", *p);
    out->parallel = p->get<bool>();
  }
  return std::nullopt;
}

Err parse_message_tool_fields(const json& msg, const std::string& p, json* norm) {
  const std::string role = (*norm)["role"].get<std::string>();
  if (const json* calls = field(msg, "tool_calls")) {
    if (!calls->is_array()) return type_error(p + ".tool_calls", "an array", *calls);
    if (!calls->empty() && role != "assistant") {
      return value_error(p + ".tool_calls", "only assistant messages carry tool calls.");
    }
    json out = json::array();
    for (size_t i = 0; i < calls->size(); ++i) {
      const std::string q = p + ".tool_calls[" + std::to_string(i) + "]";
      const json& c = (*calls)[i];
      if (!c.is_object()) return type_error(q, "an object", c);
      const json* id = field(c, "id");
      if (id == nullptr) return missing_error(q + ".id");
      if (!id->is_string()) return type_error(q + ".id", "a string", *id);
      if (const json* type = field(c, "type"); type != nullptr && *type != "function") {
        return value_error(q + ".type", "only 'function' tool calls are supported.");
      }
      const json* fn = field(c, "function");
      if (fn == nullptr) return missing_error(q + ".function");
      if (!fn->is_object()) return type_error(q + ".function", "an object", *fn);
      const json* name = field(*fn, "name");
      if (name == nullptr) return missing_error(q + ".function.name");
      if (!name->is_string()) return type_error(q + ".function.name", "a string", *name);
      const json* args = field(*fn, "arguments");
      std::string args_text = "{}";
      if (args != nullptr) {
        // OpenAI sends a JSON string; an object (as some clients send) is taken as written.
        if (!args->is_string() && !args->is_object()) {
          return type_error(q + ".function.arguments", "a string", *args);
        }
        args_text = args->is_string() ? args->get<std::string>() : args->dump();
      }
      out.push_back({{"id", *id}, {"type", "function"}, {"function", {{"name", *name}, {"arguments", args_text}}}});
    }
    if (!out.empty()) (*norm)["tool_calls"] = std::move(out);
  }
  if (role == "tool") {
    const json* id = field(msg, "tool_call_id");
    if (id == nullptr) return missing_error(p + ".tool_call_id");
    if (!id->is_string()) return type_error(p + ".tool_call_id", "a string", *id);
    (*norm)["tool_call_id"] = *id;
  }
  return std::nullopt;
}

ChatInput tool_chat_input(const json& messages, const ToolRequest& t, ToolFormat format) {
  ChatInput in;
  if (format != ToolFormat::kGeneric) {
    json msgs = messages;
    for (json& m : msgs) {
      // Llama's template writes a result with `tojson` unless it is a plain value: a JSON
      // result goes in as that value, not as a quoted string.
      if (format == ToolFormat::kLlama3 && m["role"] == "tool") {
        json v = json::parse(m["content"].get<std::string>(), nullptr, false);
        if (v.is_object() || v.is_array()) m["content"] = std::move(v);
      }
      if (format == ToolFormat::kMistral && m.contains("tool_call_id")) {
        m["tool_call_id"] = mistral_id(m["tool_call_id"].get<std::string>());
      }
      auto calls = m.find("tool_calls");
      if (calls == m.end()) continue;
      for (json& c : *calls) {
        if (format == ToolFormat::kMistral) c["id"] = mistral_id(c["id"].get<std::string>());
      }
    }
    in.messages = ojson::parse(msgs.dump(-1, ' ', false, json::error_handler_t::replace));
    for (ojson& m : in.messages) {
      auto calls = m.find("tool_calls");
      if (calls == m.end()) continue;
      for (ojson& c : *calls) {
        // Templates write arguments with `tojson`: they expect the object, not its text.
        // Keys in OpenAI's order, which templates that dump a call show the model.
        const ojson fn = c["function"];
        c = ojson{{"id", c["id"]},
                  {"type", "function"},
                  {"function", {{"name", fn["name"]},
                                {"arguments", ojson::parse(arguments_value(fn["arguments"].get<std::string>())
                                                                  .dump(-1, ' ', false, json::error_handler_t::replace))}}}};
      }
    }
    if (t.active()) {
      in.tools = ojson::array();
      for (const ToolSpec& s : t.tools) in.tools.push_back({{"type", "function"}, {"function", s.function}});
    }
    return in;
  }
  // Generic: calls and results become the JSON text the reply format uses; results go in
  // a user turn (templates such as Gemma's accept only user and assistant roles).
  json out_msgs = json::array();
  for (const json& m : messages) {
    const std::string role = m["role"].get<std::string>();
    if (role == "tool") {
      json r = {{"tool_call_id", m["tool_call_id"]}, {"content", m["content"]}};
      if (m.contains("name")) r["name"] = m["name"];
      const std::string line = json{{"tool_response", r}}.dump(-1, ' ', false, json::error_handler_t::replace);
      if (!out_msgs.empty() && out_msgs.back().value("tool_results", false)) {
        out_msgs.back()["content"] = out_msgs.back()["content"].get<std::string>() + "\n" + line;
      } else {
        out_msgs.push_back({{"role", "user"}, {"content", line}, {"tool_results", true}});
      }
      continue;
    }
    json out = {{"role", role}, {"content", m["content"]}};
    if (m.contains("name")) out["name"] = m["name"];
    if (auto calls = m.find("tool_calls"); calls != m.end()) {
      ojson list = ojson::array();  // name first, as the reply grammar writes it
      for (const json& c : *calls) {
        const json args = arguments_value(c["function"]["arguments"]);
        list.push_back({{"name", c["function"]["name"]},
                        {"arguments", ojson::parse(args.dump(-1, ' ', false, json::error_handler_t::replace))}});
      }
      std::string text = m["content"].get<std::string>();
      out["content"] = (text.empty() ? "" : text + "\n") +
                       ojson{{"tool_calls", list}}.dump(-1, ' ', false, ojson::error_handler_t::replace);
    }
    out_msgs.push_back(std::move(out));
  }
  for (json& m : out_msgs) m.erase("tool_results");
  if (t.active()) {
    const std::string prompt = generic_system_prompt(t);
    if (!out_msgs.empty() && out_msgs[0]["role"] == "system") {
      out_msgs[0]["content"] = out_msgs[0]["content"].get<std::string>() + "\n\n" + prompt;
    } else {
      out_msgs.insert(out_msgs.begin(), json{{"role", "system"}, {"content", prompt}});
    }
  }
  in.messages = ojson::parse(out_msgs.dump(-1, ' ', false, json::error_handler_t::replace));
  return in;
}

Result<std::string> tool_call_gbnf(const ToolRequest& t, ToolFormat format) {
  if (!t.active()) return std::string();
  if (format != ToolFormat::kGeneric && t.choice == ToolChoice::kAuto) return std::string();
  ojson defs = ojson::object();
  ojson call = call_schema(t, format == ToolFormat::kLlama3 ? "parameters" : "arguments", &defs);
  ojson schema;
  if (format != ToolFormat::kGeneric) {
    schema = std::move(call);
  } else {
    ojson calls = {{"type", "array"}, {"items", std::move(call)}, {"minItems", 1}};
    if (!t.parallel) calls["maxItems"] = 1;
    ojson with_calls = {{"type", "object"},
                        {"properties", {{"tool_calls", std::move(calls)}}},
                        {"required", {"tool_calls"}},
                        {"additionalProperties", false}};
    if (t.choice == ToolChoice::kAuto) {
      ojson answer = {{"type", "object"},
                      {"properties", {{"response", {{"type", "string"}}}}},
                      {"required", {"response"}},
                      {"additionalProperties", false}};
      schema = {{"anyOf", {std::move(with_calls), std::move(answer)}}};
    } else {
      schema = std::move(with_calls);
    }
  }
  schema["$defs"] = std::move(defs);
  Result<std::string> gbnf = grammar::json_schema_to_gbnf(schema);
  if (!gbnf) return gbnf.status().with_context("tools");
  // Generic: the JSON object is the reply; Llama 3: the one call object is.
  if (format == ToolFormat::kGeneric || format == ToolFormat::kLlama3) return gbnf;
  if (format == ToolFormat::kMistral) {
    // [TOOL_CALLS][call, ...]; the start rule renamed as for Hermes below.
    std::string text = "tool_call_json" + gbnf->substr(std::string("root").size());
    return "root ::= \"[TOOL_CALLS]\" \"[\" tool_call_json" +
           std::string(t.parallel ? " (\", \" tool_call_json)*" : "") + " \"]\"\n" + text;
  }
  // Hermes: the call object inside its tags. The schema's start rule is renamed; the
  // converter's own rule names never contain '_', so the new names cannot collide.
  std::string text = "tool_call_json" + gbnf->substr(std::string("root").size());
  const std::string block = R"("<tool_call>\n" tool_call_json "\n</tool_call>")";
  text = "root ::= " + block + (t.parallel ? " (\"\\n\" " + block + ")*" : "") + "\n" + text;
  return text;
}

ToolOutput parse_tool_output(std::string_view text, const ToolRequest& t, ToolFormat format) {
  ToolOutput out = format == ToolFormat::kHermes    ? parse_hermes(text, t)
                   : format == ToolFormat::kLlama3  ? parse_llama3(text, t)
                   : format == ToolFormat::kMistral ? parse_mistral(text, t)
                                                    : parse_generic(text, t);
  if (!t.parallel && out.calls.size() > 1) out.calls.resize(1);
  return out;
}

}  // namespace flashlm::server
