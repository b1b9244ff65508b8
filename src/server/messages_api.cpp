#include "server/messages_api.h"

#include "server/request_fields.h"
#include "server/sse.h"

namespace flashlm::server {
namespace {

using json = nlohmann::json;
using Err = std::optional<ApiError>;

// One Anthropic message -> chat messages: tool_result blocks become tool messages (before
// the user's text), tool_use blocks the assistant's tool calls.
Err convert_message(const json& m, const std::string& p, json* out) {
  if (!m.is_object()) return type_error(p, "an object", m);
  const json* role = field(m, "role");
  if (role == nullptr) return missing_error(p + ".role");
  if (*role != "user" && *role != "assistant") {
    return value_error(p + ".role", role->dump() + " is not one of ['user', 'assistant'].");
  }
  const std::string r = role->get<std::string>();
  const json* content = field(m, "content");
  if (content == nullptr) return missing_error(p + ".content");
  if (content->is_string()) {
    out->push_back({{"role", r}, {"content", *content}});
    return std::nullopt;
  }
  if (!content->is_array()) return type_error(p + ".content", "a string or an array of content blocks", *content);
  std::string text;
  json calls = json::array();
  for (size_t i = 0; i < content->size(); ++i) {
    const std::string q = p + ".content[" + std::to_string(i) + "]";
    const json& b = (*content)[i];
    if (!b.is_object()) return type_error(q, "an object", b);
    const json* type = field(b, "type");
    if (type == nullptr || !type->is_string()) return missing_error(q + ".type");
    const std::string t = type->get<std::string>();
    if (t == "text") {
      const json* tx = field(b, "text");
      if (tx == nullptr || !tx->is_string()) return missing_error(q + ".text");
      if (!text.empty()) text.push_back('\n');
      text += tx->get<std::string>();
    } else if (t == "tool_use" && r == "assistant") {
      const json* id = field(b, "id");
      const json* name = field(b, "name");
      if (id == nullptr || !id->is_string()) return missing_error(q + ".id");
      if (name == nullptr || !name->is_string()) return missing_error(q + ".name");
      const json* input = field(b, "input");
      if (input != nullptr && !input->is_object()) return type_error(q + ".input", "an object", *input);
      calls.push_back({{"id", *id},
                       {"type", "function"},
                       {"function", {{"name", *name}, {"arguments", input ? input->dump() : std::string("{}")}}}});
    } else if (t == "tool_result" && r == "user") {
      const json* id = field(b, "tool_use_id");
      if (id == nullptr || !id->is_string()) return missing_error(q + ".tool_use_id");
      std::string result;
      if (const json* c = field(b, "content")) {
        if (Err e = joined_text(*c, q + ".content", {"text"}, &result)) return e;
      }
      if (const json* err = field(b, "is_error"); err != nullptr && *err == true) result = "Error: " + result;
      out->push_back({{"role", "tool"}, {"tool_call_id", *id}, {"content", result}});
    } else {
      return value_error(q + ".type", "'" + t + "' blocks are not supported in " + r +
                                           " messages (text, and tool_use from the assistant or tool_result "
                                           "from the user, are).");
    }
  }
  if (r == "assistant") {
    json msg = {{"role", "assistant"}, {"content", text}};
    if (!calls.empty()) msg["tool_calls"] = std::move(calls);
    out->push_back(std::move(msg));
  } else if (!text.empty()) {
    out->push_back({{"role", "user"}, {"content", text}});
  }
  return std::nullopt;
}

// Chat parameter names in an error -> the Messages API's.
ApiError renamed(ApiError e) {
  return renamed_fields(std::move(e),
                        {{"max_completion_tokens", "max_tokens"}, {"stop", "stop_sequences"}, {"messages", "messages"}},
                        {{".function.parameters", ".input_schema"}, {".function.", "."}});
}

const char* stop_reason(const ToolOutput& reply, FinishReason finish) {
  if (!reply.calls.empty()) return "tool_use";
  return finish == FinishReason::kLength ? "max_tokens" : "end_turn";
}

ojson usage_of(const Usage& u) {
  return {{"input_tokens", u.prompt_tokens}, {"cache_read_input_tokens", u.cached_tokens},
          {"output_tokens", u.completion_tokens}};
}

class MessagesReply final : public ItemReply {
 public:
  explicit MessagesReply(std::string model) : id_(random_id("msg_")), model_(std::move(model)) {}

  std::string open(bool buffered, int64_t n_prompt) override {
    ojson msg = message(ojson::array(), ojson(), {{"input_tokens", n_prompt}, {"output_tokens", 0}});
    std::string out = event("message_start", {{"message", std::move(msg)}});
    if (!buffered) out += event("content_block_start", {{"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}});
    out += event("ping", ojson::object());
    return out;
  }

  std::string delta(const std::string& text) override {
    return event("content_block_delta", {{"index", 0}, {"delta", {{"type", "text_delta"}, {"text", text}}}});
  }

  std::string close(const ToolOutput& reply, bool buffered, FinishReason finish, const Usage& usage) override {
    const ojson blocks = content(reply);
    std::string out;
    for (size_t k = 0; k < blocks.size(); ++k) {
      const ojson& b = blocks[k];
      if (b["type"] == "text") {
        if (buffered) {
          out += event("content_block_start", {{"index", k}, {"content_block", {{"type", "text"}, {"text", ""}}}});
          out += event("content_block_delta", {{"index", k}, {"delta", {{"type", "text_delta"}, {"text", b["text"]}}}});
        }
      } else {
        ojson start = b;
        start["input"] = ojson::object();
        out += event("content_block_start", {{"index", k}, {"content_block", start}});
        out += event("content_block_delta", {{"index", k}, {"delta", {{"type", "input_json_delta"},
                                                                      {"partial_json", b["input"].dump()}}}});
      }
      out += event("content_block_stop", {{"index", k}});
    }
    out += event("message_delta", {{"delta", {{"stop_reason", stop_reason(reply, finish)}, {"stop_sequence", nullptr}}},
                                   {"usage", usage_of(usage)}});
    out += event("message_stop", ojson::object());
    return out;
  }

  std::string body(const ToolOutput& reply, FinishReason finish, const Usage& usage) override {
    return dump(message(content(reply), stop_reason(reply, finish), usage_of(usage)));
  }

  std::string error_event(const ApiError& e) override { return event("error", {{"error", error_object(e)}}); }
  HttpReply error(const ApiError& e) const override { return anthropic_error_reply(e); }

  static ojson error_object(const ApiError& e) {
    const char* type = e.status == 429   ? "rate_limit_error"
                       : e.status == 404 ? "not_found_error"
                       : e.status == 401 ? "authentication_error"
                       : e.status >= 500 ? (e.status == 503 ? "overloaded_error" : "api_error")
                                         : "invalid_request_error";
    return {{"type", type}, {"message", e.message}};
  }

 private:
  std::string event(const std::string& type, ojson data) {
    ojson ev = {{"type", type}};
    for (auto it = data.begin(); it != data.end(); ++it) ev[it.key()] = it.value();
    return sse_typed_event(type, dump(ev));
  }

  ojson message(ojson content, ojson stop, ojson usage) const {
    return {{"id", id_},          {"type", "message"},        {"role", "assistant"},
            {"model", model_},    {"content", std::move(content)}, {"stop_reason", std::move(stop)},
            {"stop_sequence", nullptr}, {"usage", std::move(usage)}};
  }

  // Content blocks, their tool_use ids fixed once (a stream's events and a body agree).
  const ojson& content(const ToolOutput& reply) {
    if (!blocks_.is_null()) return blocks_;
    blocks_ = ojson::array();
    if (reply.content && (!reply.content->empty() || reply.calls.empty())) {
      blocks_.push_back({{"type", "text"}, {"text", *reply.content}});
    }
    for (const ParsedCall& c : reply.calls) {
      ojson input = ojson::parse(c.arguments, nullptr, false);
      if (!input.is_object()) input = ojson::object();
      blocks_.push_back({{"type", "tool_use"}, {"id", random_id("toolu_")}, {"name", c.name}, {"input", input}});
    }
    return blocks_;
  }

  std::string id_, model_;
  ojson blocks_;
};

}  // namespace

HttpReply anthropic_error_reply(const ApiError& e) {
  return json_reply(e.status, dump(ojson{{"type", "error"}, {"error", MessagesReply::error_object(e)}}));
}

std::shared_ptr<ItemReply> make_messages_reply(std::string model) {
  return std::make_shared<MessagesReply>(std::move(model));
}

std::optional<ApiError> parse_messages_request(const json& body, std::string_view raw, CompletionRequest* out) {
  if (!body.is_object()) return ApiError::invalid("The request body must be a JSON object.", "", "invalid_type");
  for (const char* name : {"mcp_servers", "container"}) {
    if (field(body, name) != nullptr) return unsupported(name, "");
  }
  if (const json* th = field(body, "thinking"); th != nullptr && !(th->is_object() && th->value("type", "") == "disabled")) {
    return unsupported("thinking", "extended thinking is not implemented.");
  }
  const nlohmann::ordered_json ordered =
      raw.empty() ? nlohmann::ordered_json::parse(body.dump())
                  : nlohmann::ordered_json::parse(raw.begin(), raw.end(), nullptr, false);
  if (field(body, "max_tokens") == nullptr) return missing_error("max_tokens");
  const json* msgs = field(body, "messages");
  if (msgs == nullptr) return missing_error("messages");
  if (!msgs->is_array()) return type_error("messages", "an array", *msgs);
  if (msgs->empty()) return value_error("messages", "at least one message is required.");
  json messages = json::array();
  if (const json* sys = field(body, "system")) {
    std::string text;
    if (Err e = joined_text(*sys, "system", {"text"}, &text)) return e;
    messages.push_back({{"role", "system"}, {"content", text}});
  }
  for (size_t i = 0; i < msgs->size(); ++i) {
    if (Err e = convert_message((*msgs)[i], "messages[" + std::to_string(i) + "]", &messages)) return e;
  }
  nlohmann::ordered_json chat = {{"messages", nlohmann::ordered_json::parse(messages.dump())}};
  chat["max_completion_tokens"] = ordered["max_tokens"];
  for (const char* key : {"model", "temperature", "top_p", "top_k", "stream"}) {
    if (ordered.contains(key)) chat[key] = ordered[key];
  }
  if (ordered.contains("stop_sequences")) chat["stop"] = ordered["stop_sequences"];
  if (const json* tools = field(body, "tools")) {
    if (!tools->is_array()) return type_error("tools", "an array", *tools);
    nlohmann::ordered_json converted = nlohmann::ordered_json::array();
    for (size_t i = 0; i < tools->size(); ++i) {
      const std::string p = "tools[" + std::to_string(i) + "]";
      const json& t = (*tools)[i];
      if (!t.is_object()) return type_error(p, "an object", t);
      if (const json* type = field(t, "type"); type != nullptr && *type != "custom") {
        return value_error(p + ".type", "only client tools (name, description, input_schema) are supported, got " +
                                            type->dump() + ".");
      }
      const auto& o = ordered["tools"][i];
      nlohmann::ordered_json fn = nlohmann::ordered_json::object();
      if (o.contains("name")) fn["name"] = o["name"];
      if (o.contains("description")) fn["description"] = o["description"];
      if (!o.contains("input_schema")) return missing_error(p + ".input_schema");
      fn["parameters"] = o["input_schema"];
      converted.push_back({{"type", "function"}, {"function", std::move(fn)}});
    }
    chat["tools"] = std::move(converted);
  }
  if (const json* tc = field(body, "tool_choice")) {
    if (!tc->is_object()) return type_error("tool_choice", "an object", *tc);
    const json* type = field(*tc, "type");
    if (type == nullptr || !type->is_string()) return missing_error("tool_choice.type");
    const std::string t = type->get<std::string>();
    if (t == "auto" || t == "none") {
      chat["tool_choice"] = t;
    } else if (t == "any") {
      chat["tool_choice"] = "required";
    } else if (t == "tool") {
      const json* name = field(*tc, "name");
      if (name == nullptr || !name->is_string()) return missing_error("tool_choice.name");
      chat["tool_choice"] = {{"type", "function"}, {"function", {{"name", *name}}}};
    } else {
      return value_error("tool_choice.type", "'" + t + "' is not one of ['auto', 'any', 'tool', 'none'].");
    }
    if (const json* dp = field(*tc, "disable_parallel_tool_use")) {
      if (!dp->is_boolean()) return type_error("tool_choice.disable_parallel_tool_use", "a boolean", *dp);
      chat["parallel_tool_calls"] = !dp->get<bool>();
    }
  }
  const std::string chat_raw = chat.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  if (Err e = parse_completion_request(json::parse(chat_raw), Endpoint::kChat, out, chat_raw)) return renamed(*e);
  return std::nullopt;
}

}  // namespace flashlm::server
