// Request bodies of the OpenAI API (and llama.cpp's /tokenize, /detokenize) parsed and
// validated into plain structs. Pure functions from text or JSON to a struct or an
// ApiError: no sockets, no model, so they are unit tested and fuzzed on their own.
//
// Unknown fields are ignored (SDKs send extras and other servers' extensions); null counts
// as absent. Known fields of the wrong type or out of range are 400 errors naming the
// field in `param`, and so are OpenAI fields flashlm does not implement (audio, ...)
// when set to anything but their default: accepted means honoured.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"
#include "sampling/sampler.h"
#include "server/api_error.h"
#include "server/tool_calls.h"

namespace flashlm::server {

enum class Endpoint { kChat, kCompletion };

inline constexpr int kMaxChoices = 8;       // n
inline constexpr int kMaxTopLogprobs = 20;  // chat top_logprobs (completions: 5)
inline constexpr int kMaxStops = 16;

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChat;
  // kChat: [{"role", "content"[, "name"][, "tool_calls"][, "tool_call_id"]}], content
  // always a string ("developer" is rendered as "system"); see tool_calls.h.
  nlohmann::json messages;
  // kCompletion: text, or token ids when prompt_is_tokens.
  std::string prompt_text;
  std::vector<int32_t> prompt_tokens;
  bool prompt_is_tokens = false;

  std::string model;        // echoed back only
  int64_t max_tokens = -1;  // -1: not given (until end of generation or context)
  SamplingParams sampling;  // llama.cpp's defaults where the request says nothing
  bool seed_given = false;
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool ignore_eos = false;     // llama.cpp server's extension: generate past end-of-generation
  bool include_usage = false;  // stream_options.include_usage
  int top_logprobs = -1;       // -1: no logprobs; >= 0: chosen token + that many alternatives
  // kCompletion: the text starts with the prompt; with logprobs, they cover the prompt's
  // tokens too (the first one's null). max_tokens may then be 0 (only the prompt scored).
  bool echo = false;
  // Structured output, compiled at parse time so a bad schema or grammar is a 400:
  // response_format json_object / json_schema (OpenAI), or llama-server's top-level
  // json_schema or grammar (GBNF). Null when the output is free text.
  std::shared_ptr<const grammar::Grammar> grammar;
  // kChat: tools, tool_choice, parallel_tool_calls. The call grammar depends on the model's
  // chat template, so it is compiled when the prompt is (completion.cpp), into `grammar`.
  ToolRequest tools;
};

struct TokenizeRequest {
  std::string content;
  bool add_special = false;
  bool parse_special = true;  // llama.cpp's "parse_special", default on
};

struct DetokenizeRequest {
  std::vector<int32_t> tokens;
};

// JSON text -> value; invalid JSON (including invalid UTF-8 in strings) is a 400.
std::optional<ApiError> parse_json(std::string_view body, nlohmann::json* out);

// raw: the body's text, read again only to keep a JSON schema's properties in their
// written order (nlohmann::json sorts keys); empty: the parsed order is used.
std::optional<ApiError> parse_completion_request(const nlohmann::json& body, Endpoint endpoint, CompletionRequest* out,
                                                 std::string_view raw = {});
std::optional<ApiError> parse_tokenize_request(const nlohmann::json& body, TokenizeRequest* out);
std::optional<ApiError> parse_detokenize_request(const nlohmann::json& body, DetokenizeRequest* out);

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace flashlm::server
