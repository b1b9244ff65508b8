// Tool calling (OpenAI's tools / tool_choice / parallel_tool_calls): the request's tools,
// how the conversation and the tools reach the model's chat template, the grammar that
// makes a required or named call valid, and the model's text parsed back into calls.
//
// Two call formats, chosen from the model's chat template:
// - kHermes: templates that render `tools` themselves and ask for
//   <tool_call>{"name": ..., "arguments": {...}}</tool_call> blocks (Qwen 2.5 / 3, Hermes,
//   SmolLM3). The tools go to the template as its `tools` variable; text outside the
//   blocks is the message's content. With tool_choice auto the text is free; required or a
//   named function constrain it to call blocks.
// - kLlama3: Llama 3.1+ templates (they render `tools` and ask for one
//   {"name": ..., "parameters": {...}} object, optionally after <|python_tag|>). One call
//   per turn, as those templates allow; results are passed as JSON values where they parse.
// - kMistral: Mistral templates with [TOOL_CALLS] (Nemo, Small): the reply is
//   [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]. Their templates accept only
//   9-character alphanumeric call ids, so other ids are mapped to one (the same id always
//   to the same one) on the way in.
// - kGeneric: every other template (no `tools` support, or a call syntax flashlm does not
//   parse). The tools are described in a system message and the
//   reply is one JSON object, always grammar-constrained, as llama.cpp's generic format
//   does: {"tool_calls": [{"name": ..., "arguments": {...}}, ...]} or, with auto,
//   {"response": "..."}.
// Pure functions: no model, no sockets; unit tested and fuzzed with the request parser.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"
#include "server/api_error.h"
#include "util/status.h"

namespace flashlm::server {

inline constexpr int kMaxTools = 128;

struct ToolSpec {
  std::string name;
  // {"name", "description"?, "parameters"}, keys in the order the request wrote them (the
  // template shows them to the model with `tojson`).
  nlohmann::ordered_json function;
  bool strict = false;  // unenforceable schema keywords are a 400 instead of dropped
};

enum class ToolChoice { kAuto, kNone, kRequired, kNamed };

struct ToolRequest {
  std::vector<ToolSpec> tools;
  ToolChoice choice = ToolChoice::kAuto;
  std::string named;  // kNamed: the function's name
  bool parallel = true;
  // Tools offered and not switched off: the output is parsed for calls.
  bool active() const { return !tools.empty() && choice != ToolChoice::kNone; }
};

enum class ToolFormat { kHermes, kLlama3, kMistral, kGeneric };

ToolFormat tool_format_of(std::string_view template_source);

// tools, tool_choice and parallel_tool_calls from a chat request. `ordered` is the same
// body parsed with its keys in written order (null: use `body`'s order).
std::optional<ApiError> parse_tools(const nlohmann::json& body, const nlohmann::ordered_json* ordered, ToolRequest* out);

// One message of the conversation, checked: assistant tool_calls ([{"id", "type":
// "function", "function": {"name", "arguments": JSON text}}]) and a tool message's
// tool_call_id are copied into *norm; anything malformed is a 400 naming it.
std::optional<ApiError> parse_message_tool_fields(const nlohmann::json& msg, const std::string& param,
                                                  nlohmann::json* norm);

// What the chat template renders: the conversation (tool calls and results written the way
// the format expects) and its `tools` variable (null: not passed).
struct ChatInput {
  nlohmann::ordered_json messages;  // keys in the order templates show them (name before arguments)
  nlohmann::ordered_json tools;
};
ChatInput tool_chat_input(const nlohmann::json& messages, const ToolRequest& tools, ToolFormat format);

// GBNF the reply must match, "" when it is free (no active tools, or kHermes with auto).
// A tool's parameters that the grammar cannot express are an error naming the tool.
Result<std::string> tool_call_gbnf(const ToolRequest& tools, ToolFormat format);

struct ParsedCall {
  std::string name;
  std::string arguments;  // JSON text
};
struct ToolOutput {
  std::optional<std::string> content;  // nullopt: the reply was only calls
  std::vector<ParsedCall> calls;
};
// The reply's text split into content and calls. Calls to functions not offered, or whose
// text is not JSON, stay in the content; without parallel calls only the first is kept.
ToolOutput parse_tool_output(std::string_view text, const ToolRequest& tools, ToolFormat format);

}  // namespace flashlm::server
