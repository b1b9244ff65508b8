#include "server/request.h"

#include "grammar/json_schema.h"
#include "server/request_fields.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace flashlm::server {
namespace {

using json = nlohmann::json;
using Err = std::optional<ApiError>;

std::string num_text(double v) {
  json j = v;
  return j.dump();
}

Err get_bool(const json& obj, const char* name, bool* out) {
  const json* v = field(obj, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) return type_error(name, "a boolean", *v);
  *out = v->get<bool>();
  return std::nullopt;
}

// Integer in [lo, hi]; *given says whether the field was there.
Err get_int(const json& obj, const char* name, int64_t lo, int64_t hi, int64_t* out, bool* given = nullptr) {
  const json* v = field(obj, name);
  if (given != nullptr) *given = v != nullptr;
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) return type_error(name, "an integer", *v);
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return value_error(name, "integer above maximum value. Expected a value <= " + std::to_string(hi) + ".");
  }
  const int64_t x = v->get<int64_t>();
  if (x < lo) {
    return value_error(name, "integer below minimum value. Expected a value >= " + std::to_string(lo) + ", but got " +
                                 std::to_string(x) + " instead.");
  }
  if (x > hi) {
    return value_error(name, "integer above maximum value. Expected a value <= " + std::to_string(hi) + ", but got " +
                                 std::to_string(x) + " instead.");
  }
  *out = x;
  return std::nullopt;
}

Err get_number(const json& obj, const char* name, double lo, double hi, float* out) {
  const json* v = field(obj, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) return type_error(name, "a number", *v);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo) {
    return value_error(name, "decimal below minimum value. Expected a value >= " + num_text(lo) + ", but got " +
                                 num_text(x) + " instead.");
  }
  if (x > hi) {
    return value_error(name, "decimal above maximum value. Expected a value <= " + num_text(hi) + ", but got " +
                                 num_text(x) + " instead.");
  }
  *out = static_cast<float>(x);
  return std::nullopt;
}

Err parse_stop(const json& body, std::vector<std::string>* out) {
  const json* v = field(body, "stop");
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) {
    out->push_back(v->get<std::string>());
    return std::nullopt;
  }
  if (!v->is_array()) return type_error("stop", "a string or an array of strings", *v);
  if (v->size() > static_cast<size_t>(kMaxStops)) {
    return value_error("stop", "at most " + std::to_string(kMaxStops) + " stop strings are allowed.");
  }
  for (size_t i = 0; i < v->size(); ++i) {
    const json& s = (*v)[i];
    if (!s.is_string()) return type_error("stop[" + std::to_string(i) + "]", "a string", s);
    out->push_back(s.get<std::string>());
  }
  return std::nullopt;
}

// Message content: a string, or an array of text parts joined by newlines; null (an
// assistant turn that only called tools) becomes "".
Err parse_content(const json& msg, const std::string& param, std::string* out) {
  const json* c = field(msg, "content");
  if (c == nullptr) return std::nullopt;
  return joined_text(*c, param, {"text"}, out);
}

Err parse_messages(const json& body, json* out) {
  const json* msgs = field(body, "messages");
  if (msgs == nullptr) {
    return ApiError::invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
  }
  if (!msgs->is_array()) return type_error("messages", "an array", *msgs);
  if (msgs->empty()) {
    return value_error("messages",
                       "empty array. Expected an array with minimum length 1, but got an empty array instead.");
  }
  *out = json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const std::string p = "messages[" + std::to_string(i) + "]";
    const json& m = (*msgs)[i];
    if (!m.is_object()) return type_error(p, "an object", m);
    const json* role = field(m, "role");
    if (role == nullptr)
      return ApiError::invalid("Missing required parameter: '" + p + ".role'.", p + ".role",
                               "missing_required_parameter");
    if (!role->is_string()) return type_error(p + ".role", "a string", *role);
    std::string r = role->get<std::string>();
    if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool") {
      return value_error(p + ".role",
                         "'" + r + "' is not one of ['system', 'developer', 'user', 'assistant', 'tool'].");
    }
    if (r == "developer") r = "system";  // templates know "system"
    std::string content;
    if (Err e = parse_content(m, p + ".content", &content)) return e;
    json norm = {{"role", r}, {"content", content}};
    if (const json* name = field(m, "name")) {
      if (!name->is_string()) return type_error(p + ".name", "a string", *name);
      norm["name"] = *name;
    }
    if (Err e = parse_message_tool_fields(m, p, &norm)) return e;
    out->push_back(std::move(norm));
  }
  return std::nullopt;
}

// prompt: a string, an array of token ids, or a one-element array of either.
Err parse_prompt(const json& body, CompletionRequest* out) {
  const json* p = field(body, "prompt");
  if (p == nullptr)
    return ApiError::invalid("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter");
  if (p->is_string()) {
    out->prompt_text = p->get<std::string>();
    return std::nullopt;
  }
  if (!p->is_array()) return type_error("prompt", "a string or an array of token ids", *p);
  if (p->empty()) return value_error("prompt", "empty array. Expected a prompt.");
  const json& first = (*p)[0];
  if (first.is_string() || first.is_array()) {
    if (p->size() != 1) {
      return value_error("prompt", "batched prompts are not supported; send one prompt per request (or use 'n').");
    }
    if (first.is_string()) {
      out->prompt_text = first.get<std::string>();
      return std::nullopt;
    }
    out->prompt_is_tokens = true;
    return parse_token_array(first, "prompt[0]", &out->prompt_tokens);
  }
  out->prompt_is_tokens = true;
  return parse_token_array(*p, "prompt", &out->prompt_tokens);
}


// OpenAI fields flashlm does not implement: absent, null or their default pass; anything
// else is a 400 naming the field (never a silent 200 that ignores it).
Err refuse_unimplemented(const json& body, Endpoint endpoint) {
  if (endpoint != Endpoint::kChat) return std::nullopt;
  for (const char* name : {"functions", "function_call", "audio", "prediction", "web_search_options",
                           "reasoning_effort", "verbosity"}) {
    if (field(body, name) != nullptr) return unsupported(name, "");
  }
  if (const json* m = field(body, "modalities")) {
    if (!(m->is_array() && m->size() == 1 && (*m)[0] == "text")) {
      return unsupported("modalities", "only [\"text\"] is.");
    }
  }
  if (const json* st = field(body, "store")) {
    if (!st->is_boolean()) return type_error("store", "a boolean", *st);
    if (st->get<bool>()) return unsupported("store", "completions are not stored.");
  }
  return std::nullopt;
}

// logit_bias: {"token id": bias in [-100, 100]}. Ids are checked against the vocabulary
// when the request is submitted.
Err parse_logit_bias(const json& body, SamplingParams* s) {
  const json* lb = field(body, "logit_bias");
  if (lb == nullptr) return std::nullopt;
  if (!lb->is_object()) return type_error("logit_bias", "an object mapping token ids to biases", *lb);
  constexpr size_t kMaxBiases = 1024;
  if (lb->size() > kMaxBiases) return value_error("logit_bias", "at most 1024 tokens may be biased.");
  for (auto it = lb->begin(); it != lb->end(); ++it) {
    const std::string p = "logit_bias." + it.key();
    const std::string& k = it.key();
    if (k.empty() || k.size() > 10 || k.find_first_not_of("0123456789") != std::string::npos) {
      return value_error("logit_bias", "keys must be token ids (non-negative integers), got '" + k + "'.");
    }
    const long long id = std::stoll(k);
    if (id > std::numeric_limits<int32_t>::max()) return value_error("logit_bias", "token id " + k + " is out of range.");
    if (!it.value().is_number()) return type_error(p, "a number", it.value());
    const double b = it.value().get<double>();
    if (!std::isfinite(b) || b < -100.0 || b > 100.0) {
      return value_error(p, "bias must be in [-100, 100], got " + num_text(b) + ".");
    }
    s->logit_bias.push_back({static_cast<int32_t>(id), static_cast<float>(b)});
  }
  std::sort(s->logit_bias.begin(), s->logit_bias.end());
  return std::nullopt;
}

// The schema at body[path...] with its keys in written order (see parse_completion_request).
nlohmann::ordered_json ordered_schema(const json& schema, std::string_view raw, std::initializer_list<const char*> path) {
  if (!raw.empty()) {
    nlohmann::ordered_json o = nlohmann::ordered_json::parse(raw.begin(), raw.end(), nullptr, false);
    const nlohmann::ordered_json* at = &o;
    for (const char* key : path) {
      if (!at->is_object() || !at->contains(key)) {
        at = nullptr;
        break;
      }
      at = &(*at)[key];
    }
    if (at != nullptr) return *at;
  }
  return nlohmann::ordered_json::parse(schema.dump());
}

Err compile_grammar(const std::string& gbnf, const std::string& param, CompletionRequest* out) {
  Result<grammar::Grammar> g = grammar::parse_gbnf(gbnf);
  if (!g) return value_error(param, g.message());
  out->grammar = std::make_shared<const grammar::Grammar>(std::move(g.value()));
  return std::nullopt;
}

Err compile_schema(const json& schema, std::string_view raw, std::initializer_list<const char*> path,
                   const std::string& param, CompletionRequest* out) {
  if (!schema.is_object() && !schema.is_boolean()) return type_error(param, "an object", schema);
  Result<std::string> gbnf = grammar::json_schema_to_gbnf(ordered_schema(schema, raw, path));
  if (!gbnf) return value_error(param, gbnf.message());
  return compile_grammar(*gbnf, param, out);
}

// response_format (OpenAI), json_schema and grammar (llama-server): at most one.
Err parse_constraints(const json& body, std::string_view raw, CompletionRequest* out) {
  int given = 0;
  if (const json* rf = field(body, "response_format")) {
    if (!rf->is_object()) return type_error("response_format", "an object", *rf);
    const json* type = field(*rf, "type");
    if (type == nullptr || !type->is_string()) {
      return ApiError::invalid("Missing required parameter: 'response_format.type'.", "response_format.type",
                               "missing_required_parameter");
    }
    const std::string t = type->get<std::string>();
    if (t == "json_object") {
      ++given;
      if (const json* sch = field(*rf, "schema")) {  // llama-server's form
        if (Err e = compile_schema(*sch, raw, {"response_format", "schema"}, "response_format.schema", out)) return e;
      } else if (Err e = compile_grammar(grammar::json_object_gbnf(), "response_format", out)) {
        return e;
      }
    } else if (t == "json_schema") {
      ++given;
      const json* js = field(*rf, "json_schema");
      if (js == nullptr) {
        return ApiError::invalid("Missing required parameter: 'response_format.json_schema'.",
                                 "response_format.json_schema", "missing_required_parameter");
      }
      if (!js->is_object()) return type_error("response_format.json_schema", "an object", *js);
      if (const json* name = field(*js, "name"); name != nullptr && !name->is_string()) {
        return type_error("response_format.json_schema.name", "a string", *name);
      }
      if (const json* strict = field(*js, "strict"); strict != nullptr && !strict->is_boolean()) {
        return type_error("response_format.json_schema.strict", "a boolean", *strict);
      }
      const json* sch = field(*js, "schema");
      if (sch == nullptr) {
        if (Err e = compile_grammar(grammar::json_object_gbnf(), "response_format", out)) return e;
      } else if (Err e = compile_schema(*sch, raw, {"response_format", "json_schema", "schema"},
                                        "response_format.json_schema.schema", out)) {
        return e;
      }
    } else if (t != "text") {
      return value_error("response_format.type", "'" + t + "' is not one of ['text', 'json_object', 'json_schema'].");
    }
  }
  if (const json* sch = field(body, "json_schema")) {
    if (++given > 1) return value_error("json_schema", "give only one of response_format, json_schema and grammar.");
    if (Err e = compile_schema(*sch, raw, {"json_schema"}, "json_schema", out)) return e;
  }
  if (const json* g = field(body, "grammar")) {
    if (!g->is_string()) return type_error("grammar", "a string (GBNF)", *g);
    if (++given > 1) return value_error("grammar", "give only one of response_format, json_schema and grammar.");
    if (Err e = compile_grammar(g->get<std::string>(), "grammar", out)) return e;
  }
  // vLLM's structured_outputs: one of json (a schema), regex, choice or grammar.
  if (const json* so = field(body, "structured_outputs")) {
    if (!so->is_object()) return type_error("structured_outputs", "an object", *so);
    if (++given > 1 || so->size() != 1) {
      return value_error("structured_outputs", "give exactly one constraint (json, regex, choice or grammar), and "
                                               "no response_format, json_schema or grammar besides.");
    }
    const std::string kind = so->begin().key();
    const json& v = so->begin().value();
    const std::string p = "structured_outputs." + kind;
    if (kind == "json") return compile_schema(v, raw, {"structured_outputs", "json"}, p, out);
    if (kind == "regex" || kind == "grammar") {
      if (!v.is_string()) return type_error(p, "a string", v);
      if (kind == "grammar") return compile_grammar(v.get<std::string>(), p, out);
      Result<std::string> gbnf = grammar::regex_to_gbnf(v.get<std::string>());
      if (!gbnf) return value_error(p, gbnf.message());
      return compile_grammar(*gbnf, p, out);
    }
    if (kind == "choice") {
      if (!v.is_array() || v.empty()) return type_error(p, "a non-empty array of strings", v);
      std::string gbnf = "root ::= ";
      for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string()) return type_error(p + "[" + std::to_string(i) + "]", "a string", v[i]);
        // A JSON string literal is a valid GBNF literal once its escapes are GBNF's: \uXXXX
        // and the short escapes mean the same in both.
        gbnf += (i ? " | " : "") + v[i].dump(-1, ' ', false, json::error_handler_t::replace);
      }
      return compile_grammar(gbnf + "\n", p, out);
    }
    return value_error("structured_outputs", "'" + kind + "' is not one of json, regex, choice, grammar.");
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_json(std::string_view body, nlohmann::json* out) {
  // Iterative parser: deep nesting costs memory bounded by the body size, not stack.
  *out = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) {
    if (!is_valid_utf8(body)) {
      return ApiError::invalid("We could not parse the JSON body of your request: it is not valid UTF-8.", "",
                               "invalid_json");
    }
    return ApiError::invalid(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
        "library correctly. The OpenAI API expects a JSON payload.)",
        "", "invalid_json");
  }
  return std::nullopt;
}

std::optional<ApiError> parse_completion_request(const json& body, Endpoint endpoint, CompletionRequest* out,
                                                 std::string_view raw) {
  *out = CompletionRequest{};
  out->endpoint = endpoint;
  if (!body.is_object()) return ApiError::invalid("The request body must be a JSON object.", "", "invalid_type");
  if (endpoint == Endpoint::kChat) {
    if (Err e = parse_messages(body, &out->messages)) return e;
  } else {
    if (Err e = parse_prompt(body, out)) return e;
  }
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) return type_error("model", "a string", *m);
    out->model = m->get<std::string>();
  }
  constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
  // max_completion_tokens replaces max_tokens for chat; either is accepted. Completions
  // take 0 with echo (checked there).
  if (Err e = get_int(body, "max_tokens", endpoint == Endpoint::kCompletion ? 0 : 1, kMaxInt, &out->max_tokens)) {
    return e;
  }
  if (endpoint == Endpoint::kChat) {
    if (Err e = get_int(body, "max_completion_tokens", 1, kMaxInt, &out->max_tokens)) return e;
  }
  SamplingParams& s = out->sampling;
  if (Err e = get_number(body, "temperature", 0.0, 2.0, &s.temperature)) return e;
  if (Err e = get_number(body, "top_p", 0.0, 1.0, &s.top_p)) return e;
  if (Err e = get_number(body, "presence_penalty", -2.0, 2.0, &s.presence_penalty)) return e;
  if (Err e = get_number(body, "frequency_penalty", -2.0, 2.0, &s.frequency_penalty)) return e;
  // llama.cpp's extensions.
  if (Err e = get_number(body, "min_p", 0.0, 1.0, &s.min_p)) return e;
  if (Err e = get_number(body, "repeat_penalty", 1e-6, 100.0, &s.repeat_penalty)) return e;
  int64_t top_k = s.top_k;
  if (Err e = get_int(body, "top_k", 0, std::numeric_limits<int32_t>::max(), &top_k)) return e;
  s.top_k = static_cast<int32_t>(top_k);
  if (const json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) return type_error("seed", "an integer", *seed);
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : static_cast<uint64_t>(seed->get<int64_t>());
    out->seed_given = !is_random_seed(s.seed);
  }
  if (Err e = parse_stop(body, &out->stop)) return e;
  int64_t n = 1;
  if (Err e = get_int(body, "n", 1, kMaxChoices, &n)) return e;
  out->n = static_cast<int>(n);
  if (Err e = get_bool(body, "stream", &out->stream)) return e;
  if (Err e = get_bool(body, "ignore_eos", &out->ignore_eos)) return e;
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) return type_error("stream_options", "an object", *so);
    if (!out->stream) {
      return ApiError::invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                               "stream_options", "invalid_value");
    }
    if (Err e = get_bool(*so, "include_usage", &out->include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }
  if (endpoint == Endpoint::kChat) {
    bool logprobs = false;
    if (Err e = get_bool(body, "logprobs", &logprobs)) return e;
    int64_t top = 0;
    bool top_given = false;
    if (Err e = get_int(body, "top_logprobs", 0, kMaxTopLogprobs, &top, &top_given)) return e;
    if (top_given && !logprobs) {
      return ApiError::invalid("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs", "invalid_value");
    }
    out->top_logprobs = logprobs ? static_cast<int>(top) : -1;
  } else {
    int64_t lp = -1;
    if (Err e = get_int(body, "logprobs", 0, 5, &lp)) return e;
    out->top_logprobs = static_cast<int>(lp);
    if (Err e = get_bool(body, "echo", &out->echo)) return e;
    if (out->max_tokens == 0 && !out->echo) {
      return value_error("max_tokens",
                         "integer below minimum value. Expected a value >= 1, but got 0 instead (0 is allowed only "
                         "with 'echo', to score the prompt).");
    }
    if (const json* suffix = field(body, "suffix")) {
      if (!suffix->is_string()) return type_error("suffix", "a string", *suffix);
      if (!suffix->get<std::string>().empty()) {
        return ApiError::invalid("'suffix' is not supported.", "suffix", "unsupported_value");
      }
    }
    int64_t best_of = 1;
    if (Err e = get_int(body, "best_of", 1, kMaxChoices, &best_of)) return e;
    if (best_of != 1) return ApiError::invalid("'best_of' > 1 is not supported.", "best_of", "unsupported_value");
  }
  if (const json* u = field(body, "user")) {
    if (!u->is_string()) return type_error("user", "a string", *u);
  }
  if (Err e = parse_logit_bias(body, &s)) return e;
  if (Err e = refuse_unimplemented(body, endpoint)) return e;
  if (Err e = parse_constraints(body, raw, out)) return e;
  if (endpoint == Endpoint::kChat) {
    // Tool schemas are shown to the model as written: their keys in the body's order.
    nlohmann::ordered_json ordered;
    if (!raw.empty() && field(body, "tools") != nullptr) {
      ordered = nlohmann::ordered_json::parse(raw.begin(), raw.end(), nullptr, false);
    }
    if (Err e = parse_tools(body, ordered.is_object() ? &ordered : nullptr, &out->tools)) return e;
    if (out->tools.active() && out->grammar != nullptr) {
      return value_error("response_format", "a response format or grammar cannot be combined with tools in one "
                                            "request; set tool_choice to 'none' or leave the format out.");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tokenize_request(const json& body, TokenizeRequest* out) {
  *out = TokenizeRequest{};
  if (!body.is_object()) return ApiError::invalid("The request body must be a JSON object.", "", "invalid_type");
  // llama.cpp's "content" / "add_special", or vLLM's "prompt" / "add_special_tokens".
  const char* text_key = field(body, "content") == nullptr && field(body, "prompt") != nullptr ? "prompt" : "content";
  const json* c = field(body, text_key);
  if (c == nullptr)
    return ApiError::invalid("Missing required parameter: 'content'.", "content", "missing_required_parameter");
  if (!c->is_string()) return type_error(text_key, "a string", *c);
  out->content = c->get<std::string>();
  if (Err e = get_bool(body, "add_special_tokens", &out->add_special)) return e;
  if (Err e = get_bool(body, "add_special", &out->add_special)) return e;
  if (Err e = get_bool(body, "parse_special", &out->parse_special)) return e;
  return std::nullopt;
}

std::optional<ApiError> parse_detokenize_request(const json& body, DetokenizeRequest* out) {
  *out = DetokenizeRequest{};
  if (!body.is_object()) return ApiError::invalid("The request body must be a JSON object.", "", "invalid_type");
  const json* t = field(body, "tokens");
  if (t == nullptr)
    return ApiError::invalid("Missing required parameter: 'tokens'.", "tokens", "missing_required_parameter");
  if (!t->is_array()) return type_error("tokens", "an array of token ids", *t);
  return parse_token_array(*t, "tokens", &out->tokens);
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace flashlm::server
