#include "server/responses_api.h"

#include "server/request_fields.h"
#include "server/sse.h"

#include <ctime>

namespace flashlm::server {
namespace {

using json = nlohmann::json;
using Err = std::optional<ApiError>;

const json* required_string(const json& item, const char* key, const std::string& p, Err* err) {
  const json* v = field(item, key);
  if (v == nullptr) {
    *err = missing_error(p + "." + key);
  } else if (!v->is_string()) {
    *err = type_error(p + "." + key, "a string", *v);
    v = nullptr;
  }
  return v;
}

// input: a string (one user message) or items: messages, function_call and
// function_call_output, appended to *msgs as chat messages.
Err parse_input(const json& input, json* msgs) {
  if (input.is_string()) {
    msgs->push_back({{"role", "user"}, {"content", input}});
    return std::nullopt;
  }
  if (!input.is_array()) return type_error("input", "a string or an array of input items", input);
  if (input.empty()) return value_error("input", "empty array. Expected at least one input item.");
  bool calls_open = false;  // the last message is an assistant turn made of function_call items
  for (size_t i = 0; i < input.size(); ++i) {
    const std::string p = "input[" + std::to_string(i) + "]";
    const json& item = input[i];
    if (!item.is_object()) return type_error(p, "an object", item);
    const json* type = field(item, "type");
    if (type != nullptr && !type->is_string()) return type_error(p + ".type", "a string", *type);
    const std::string t = type != nullptr ? type->get<std::string>() : "message";
    Err err;
    if (t == "message") {
      const json* role = required_string(item, "role", p, &err);
      if (role == nullptr) return err;
      const std::string r = role->get<std::string>();
      if (r != "user" && r != "assistant" && r != "system" && r != "developer") {
        return value_error(p + ".role", "'" + r + "' is not one of ['user', 'assistant', 'system', 'developer'].");
      }
      const json* c = field(item, "content");
      if (c == nullptr) return missing_error(p + ".content");
      std::string text;
      if (Err e = joined_text(*c, p + ".content", {"input_text", "output_text", "text"}, &text)) return e;
      msgs->push_back({{"role", r}, {"content", text}});
      calls_open = false;
    } else if (t == "function_call") {
      const json* call_id = required_string(item, "call_id", p, &err);
      const json* name = call_id ? required_string(item, "name", p, &err) : nullptr;
      const json* args = name ? required_string(item, "arguments", p, &err) : nullptr;
      if (args == nullptr) return err;
      json call = {{"id", *call_id}, {"type", "function"}, {"function", {{"name", *name}, {"arguments", *args}}}};
      if (calls_open) {
        msgs->back()["tool_calls"].push_back(std::move(call));
      } else {
        msgs->push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array({std::move(call)})}});
        calls_open = true;
      }
    } else if (t == "function_call_output") {
      const json* call_id = required_string(item, "call_id", p, &err);
      const json* output = call_id ? required_string(item, "output", p, &err) : nullptr;
      if (output == nullptr) return err;
      msgs->push_back({{"role", "tool"}, {"tool_call_id", *call_id}, {"content", *output}});
      calls_open = false;
    } else {
      return value_error(p + ".type", "'" + t + "' items are not supported (message, function_call and "
                                               "function_call_output are).");
    }
  }
  return std::nullopt;
}

// Flat Responses tools ({"type": "function", "name", ...}) as chat tools.
Err chat_tools(const json& tools, nlohmann::ordered_json* out) {
  if (!tools.is_array()) return type_error("tools", "an array", tools);
  *out = nlohmann::ordered_json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string p = "tools[" + std::to_string(i) + "]";
    const json& t = tools[i];
    if (!t.is_object()) return type_error(p, "an object", t);
    const json* type = field(t, "type");
    if (type == nullptr) return missing_error(p + ".type");
    if (*type != "function") {
      return value_error(p + ".type", "only function tools are supported, got " + type->dump() + ".");
    }
    nlohmann::ordered_json fn = nlohmann::ordered_json::object();
    for (const char* key : {"name", "description", "parameters", "strict"}) {
      if (const json* v = field(t, key)) fn[key] = nlohmann::ordered_json::parse(v->dump());
    }
    out->push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return std::nullopt;
}

// Chat-side parameter names in an error -> the Responses API's (tools are flat there).
ApiError renamed(ApiError e) {
  return renamed_fields(std::move(e),
                        {{"max_completion_tokens", "max_output_tokens"},
                         {"response_format.json_schema.schema", "text.format.schema"},
                         {"response_format", "text.format"},
                         {"messages", "input"}},
                        {{".function.", "."}});
}

}  // namespace

void ResponseStore::put(const std::string& id, json messages) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry e;
  e.bytes = messages.dump(-1, ' ', false, json::error_handler_t::replace).size();
  if (e.bytes > max_bytes_) return;  // one conversation larger than the whole store
  e.messages = std::move(messages);
  bytes_ += e.bytes;
  entries_[id] = std::move(e);
  order_.push_back(id);
  while (!order_.empty() && (entries_.size() > capacity_ || bytes_ > max_bytes_)) {
    auto it = entries_.find(order_.front());
    if (it != entries_.end()) {
      bytes_ -= it->second.bytes;
      entries_.erase(it);
    }
    order_.pop_front();
  }
}

std::optional<json> ResponseStore::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.messages;
}

size_t ResponseStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

std::optional<ApiError> parse_responses_request(const json& body, std::string_view raw, const json& history,
                                                CompletionRequest* out, ResponsesRequest* meta) {
  *meta = ResponsesRequest{};
  if (!body.is_object()) return ApiError::invalid("The request body must be a JSON object.", "", "invalid_type");
  // Responses features flashlm does not implement: a 400 naming them, never ignored.
  for (const char* name : {"reasoning", "conversation", "prompt", "max_tool_calls", "top_logprobs"}) {
    if (field(body, name) != nullptr) return unsupported(name, "");
  }
  if (const json* inc = field(body, "include"); inc != nullptr && !(inc->is_array() && inc->empty())) {
    return unsupported("include", "no additional output data is available.");
  }
  if (const json* bg = field(body, "background"); bg != nullptr && *bg != false) {
    return unsupported("background", "responses run in the foreground.");
  }
  if (const json* tr = field(body, "truncation"); tr != nullptr && *tr != "disabled") {
    return unsupported("truncation", "only 'disabled' is (a prompt past the context is a 400).");
  }
  if (const json* st = field(body, "store")) {
    if (!st->is_boolean()) return type_error("store", "a boolean", *st);
    meta->store = st->get<bool>();
  }
  const nlohmann::ordered_json ordered =
      raw.empty() ? nlohmann::ordered_json::parse(body.dump())
                  : nlohmann::ordered_json::parse(raw.begin(), raw.end(), nullptr, false);

  nlohmann::ordered_json chat = nlohmann::ordered_json::object();
  json messages = json::array();
  if (const json* ins = field(body, "instructions")) {
    if (!ins->is_string()) return type_error("instructions", "a string", *ins);
    messages.push_back({{"role", "system"}, {"content", *ins}});
  }
  meta->conversation = history.is_array() ? history : json::array();
  const json* input = field(body, "input");
  if (input == nullptr) return missing_error("input");
  if (Err e = parse_input(*input, &meta->conversation)) return e;
  for (const json& m : meta->conversation) messages.push_back(m);
  chat["messages"] = nlohmann::ordered_json::parse(messages.dump());

  for (const char* key : {"model", "temperature", "top_p", "stream", "parallel_tool_calls", "seed", "user"}) {
    if (ordered.contains(key)) chat[key] = ordered[key];
  }
  if (ordered.contains("max_output_tokens")) chat["max_completion_tokens"] = ordered["max_output_tokens"];
  if (const json* tools = field(body, "tools")) {
    nlohmann::ordered_json converted;
    if (Err e = chat_tools(*tools, &converted)) return e;
    // The parameters keep their written key order (shown to the model).
    if (ordered.contains("tools") && ordered["tools"].is_array() && ordered["tools"].size() == converted.size()) {
      for (size_t i = 0; i < converted.size(); ++i) {
        const auto& o = ordered["tools"][i];
        if (o.is_object() && o.contains("parameters")) converted[i]["function"]["parameters"] = o["parameters"];
      }
    }
    chat["tools"] = std::move(converted);
  }
  if (const json* tc = field(body, "tool_choice")) {
    if (tc->is_object()) {
      const json* type = field(*tc, "type");
      if (type == nullptr || *type != "function") {
        return value_error("tool_choice.type", "only {\"type\": \"function\", \"name\": ...} is supported.");
      }
      const json* name = field(*tc, "name");
      if (name == nullptr || !name->is_string()) return missing_error("tool_choice.name");
      chat["tool_choice"] = {{"type", "function"}, {"function", {{"name", *name}}}};
    } else {
      chat["tool_choice"] = ordered["tool_choice"];
    }
  }
  if (const json* text = field(body, "text")) {
    if (!text->is_object()) return type_error("text", "an object", *text);
    if (const json* fmt = field(*text, "format")) {
      if (!fmt->is_object()) return type_error("text.format", "an object", *fmt);
      const json* type = field(*fmt, "type");
      if (type == nullptr || !type->is_string()) return missing_error("text.format.type");
      const std::string t = type->get<std::string>();
      const auto& ofmt = ordered["text"]["format"];
      if (t == "json_object") {
        chat["response_format"] = {{"type", "json_object"}};
      } else if (t == "json_schema") {
        nlohmann::ordered_json js = nlohmann::ordered_json::object();
        for (const char* key : {"name", "schema", "strict"}) {
          if (ofmt.contains(key)) js[key] = ofmt[key];
        }
        if (!js.contains("schema")) return missing_error("text.format.schema");
        chat["response_format"] = {{"type", "json_schema"}, {"json_schema", std::move(js)}};
      } else if (t != "text") {
        return value_error("text.format.type", "'" + t + "' is not one of ['text', 'json_object', 'json_schema'].");
      }
    }
  }
  const std::string chat_raw = chat.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  if (Err e = parse_completion_request(json::parse(chat_raw), Endpoint::kChat, out, chat_raw)) return renamed(*e);

  if (const json* prev = field(body, "previous_response_id")) {
    if (!prev->is_string()) return type_error("previous_response_id", "a string", *prev);
    meta->previous_response_id = prev->get<std::string>();
  }
  nlohmann::ordered_json& echo = meta->echo;
  echo["instructions"] = ordered.contains("instructions") ? ordered["instructions"] : nlohmann::ordered_json();
  echo["max_output_tokens"] = ordered.contains("max_output_tokens") ? ordered["max_output_tokens"]
                                                                     : nlohmann::ordered_json();
  echo["parallel_tool_calls"] = out->tools.parallel;
  echo["previous_response_id"] = meta->previous_response_id.empty()
                                     ? nlohmann::ordered_json()
                                     : nlohmann::ordered_json(meta->previous_response_id);
  echo["store"] = meta->store;
  echo["temperature"] = out->sampling.temperature;
  echo["text"] = ordered.contains("text") ? ordered["text"] : nlohmann::ordered_json{{"format", {{"type", "text"}}}};
  echo["tool_choice"] = ordered.contains("tool_choice") ? ordered["tool_choice"] : nlohmann::ordered_json("auto");
  echo["tools"] = ordered.contains("tools") ? ordered["tools"] : nlohmann::ordered_json::array();
  echo["top_p"] = out->sampling.top_p;
  echo["metadata"] = ordered.contains("metadata") ? ordered["metadata"] : nlohmann::ordered_json::object();
  return std::nullopt;
}

namespace {

ojson response_output_items(const ToolOutput& reply, const std::string& message_id) {
  ojson items = ojson::array();
  if (reply.content) {
    items.push_back({{"type", "message"},
                     {"id", message_id},
                     {"status", "completed"},
                     {"role", "assistant"},
                     {"content", ojson::array({{{"type", "output_text"},
                                                {"text", *reply.content},
                                                {"annotations", ojson::array()},
                                                {"logprobs", ojson::array()}}})}});
  }
  for (const ParsedCall& c : reply.calls) {
    items.push_back({{"type", "function_call"},
                     {"id", random_id("fc_")},
                     {"call_id", random_id("call_")},
                     {"name", c.name},
                     {"arguments", c.arguments},
                     {"status", "completed"}});
  }
  return items;
}

ojson response_object(const ResponseMeta& meta, const ResponsesRequest& req, const std::string& status, ojson output,
                      const Usage* usage) {
  const ojson& e = req.echo;
  ojson r = {{"id", meta.id},
             {"object", "response"},
             {"created_at", meta.created},
             {"status", status},
             {"background", false},
             {"error", nullptr},
             {"incomplete_details",
              status == "incomplete" ? ojson{{"reason", "max_output_tokens"}} : ojson()},
             {"instructions", e.value("instructions", ojson())},
             {"max_output_tokens", e.value("max_output_tokens", ojson())},
             {"model", meta.model},
             {"output", std::move(output)},
             {"parallel_tool_calls", e.value("parallel_tool_calls", true)},
             {"previous_response_id", e.value("previous_response_id", ojson())},
             {"reasoning", {{"effort", nullptr}, {"summary", nullptr}}},
             {"store", e.value("store", true)},
             {"temperature", e.value("temperature", ojson())},
             {"text", e.value("text", ojson())},
             {"tool_choice", e.value("tool_choice", ojson("auto"))},
             {"tools", e.value("tools", ojson::array())},
             {"top_p", e.value("top_p", ojson())},
             {"truncation", "disabled"}};
  if (usage != nullptr) {
    r["usage"] = {{"input_tokens", usage->prompt_tokens},
                  {"input_tokens_details", {{"cached_tokens", usage->cached_tokens}}},
                  {"output_tokens", usage->completion_tokens},
                  {"output_tokens_details", {{"reasoning_tokens", 0}}},
                  {"total_tokens", usage->prompt_tokens + usage->completion_tokens}};
  } else {
    r["usage"] = nullptr;
  }
  r["user"] = nullptr;
  r["metadata"] = e.value("metadata", ojson::object());
  return r;
}

std::string responses_event(const std::string& type, ojson data, int64_t* seq) {
  ojson ev = {{"type", type}, {"sequence_number", (*seq)++}};
  for (auto it = data.begin(); it != data.end(); ++it) ev[it.key()] = it.value();
  return sse_typed_event(type, dump(ev));
}

json conversation_after(const json& conversation, const ojson& items) {
  json out = conversation;
  json msg = {{"role", "assistant"}, {"content", ""}};
  json calls = json::array();
  for (const ojson& item : items) {
    if (item["type"] == "message") {
      msg["content"] = item["content"][0]["text"].get<std::string>();
    } else {
      calls.push_back({{"id", item["call_id"]},
                       {"type", "function"},
                       {"function", {{"name", item["name"]}, {"arguments", item["arguments"]}}}});
    }
  }
  if (!calls.empty()) msg["tool_calls"] = std::move(calls);
  out.push_back(std::move(msg));
  return out;
}


ojson text_part(const std::string& text) {
  return {{"type", "output_text"}, {"text", text}, {"annotations", ojson::array()}, {"logprobs", ojson::array()}};
}

class ResponsesReply final : public ItemReply {
 public:
  ResponsesReply(std::shared_ptr<const ResponsesRequest> req, std::shared_ptr<ResponseStore> store, std::string model)
      : req_(std::move(req)), store_(std::move(store)) {
    meta_.id = random_id("resp_");
    meta_.created = static_cast<int64_t>(std::time(nullptr));
    meta_.model = std::move(model);
    message_id_ = random_id("msg_");
  }

  std::string open(bool buffered, int64_t /*n_prompt*/) override {
    const ojson r = response_object(meta_, *req_, "in_progress", ojson::array(), nullptr);
    // One statement per event: the order of operands of + is unspecified, and each event
    // takes the next sequence number.
    std::string out = event("response.created", {{"response", r}});
    out += event("response.in_progress", {{"response", r}});
    if (!buffered) out += open_message(0);  // text deltas follow it
    return out;
  }

  std::string delta(const std::string& text) override {
    return event("response.output_text.delta", {{"item_id", message_id_}, {"output_index", 0}, {"content_index", 0},
                                                 {"delta", text}, {"logprobs", ojson::array()}});
  }

  std::string close(const ToolOutput& reply, bool buffered, FinishReason finish, const Usage& usage) override {
    const ojson items = finished_items(reply);
    std::string out;
    for (size_t k = 0; k < items.size(); ++k) {
      const ojson& item = items[k];
      if (item["type"] == "message") {
        const std::string text = item["content"][0]["text"].get<std::string>();
        if (buffered) {
          out += open_message(k);
          out += delta_at(k, text);
        }
        out += event("response.output_text.done", {{"item_id", message_id_}, {"output_index", k}, {"content_index", 0},
                                                   {"text", text}, {"logprobs", ojson::array()}});
        out += event("response.content_part.done",
                     {{"item_id", message_id_}, {"output_index", k}, {"content_index", 0}, {"part", text_part(text)}});
      } else {
        ojson opened = item;
        opened["arguments"] = "";
        opened["status"] = "in_progress";
        out += event("response.output_item.added", {{"output_index", k}, {"item", opened}});
        out += event("response.function_call_arguments.delta",
                     {{"item_id", item["id"]}, {"output_index", k}, {"delta", item["arguments"]}});
        out += event("response.function_call_arguments.done",
                     {{"item_id", item["id"]}, {"output_index", k}, {"arguments", item["arguments"]}});
      }
      out += event("response.output_item.done", {{"output_index", k}, {"item", item}});
    }
    const bool cut = finish == FinishReason::kLength;
    out += event(cut ? "response.incomplete" : "response.completed", {{"response", finished(items, finish, usage)}});
    return out;
  }

  std::string body(const ToolOutput& reply, FinishReason finish, const Usage& usage) override {
    return dump(finished(finished_items(reply), finish, usage));
  }

  std::string error_event(const ApiError& e) override {
    return event("error", {{"code", e.code.empty() ? ojson() : ojson(e.code)},
                           {"message", e.message},
                           {"param", e.param.empty() ? ojson() : ojson(e.param)}});
  }

 private:
  std::string event(const std::string& type, ojson data) { return responses_event(type, std::move(data), &seq_); }

  std::string open_message(size_t index) {
    const ojson item = {{"type", "message"}, {"id", message_id_}, {"status", "in_progress"}, {"role", "assistant"},
                        {"content", ojson::array()}};
    std::string out = event("response.output_item.added", {{"output_index", index}, {"item", item}});
    out += event("response.content_part.added",
                 {{"item_id", message_id_}, {"output_index", index}, {"content_index", 0}, {"part", text_part("")}});
    return out;
  }

  std::string delta_at(size_t index, const std::string& text) {
    return event("response.output_text.delta", {{"item_id", message_id_}, {"output_index", index},
                                                 {"content_index", 0}, {"delta", text}, {"logprobs", ojson::array()}});
  }

  // The items once, with their ids fixed (close() and body() may not both run, but a
  // stream's events and its final response object must agree).
  const ojson& finished_items(const ToolOutput& reply) {
    if (items_.is_null()) items_ = response_output_items(reply, message_id_);
    return items_;
  }

  // The final response object; the conversation is stored on the way.
  ojson finished(const ojson& items, FinishReason finish, const Usage& usage) {
    if (req_->store && store_) store_->put(meta_.id, conversation_after(req_->conversation, items));
    return response_object(meta_, *req_, finish == FinishReason::kLength ? "incomplete" : "completed", items, &usage);
  }

  std::shared_ptr<const ResponsesRequest> req_;
  std::shared_ptr<ResponseStore> store_;
  ResponseMeta meta_;
  std::string message_id_;
  int64_t seq_ = 0;
  ojson items_;
};

}  // namespace

std::shared_ptr<ItemReply> make_responses_reply(std::shared_ptr<const ResponsesRequest> req,
                                                std::shared_ptr<ResponseStore> store, std::string model) {
  return std::make_shared<ResponsesReply>(std::move(req), std::move(store), std::move(model));
}

}  // namespace flashlm::server
