// The Responses and Messages APIs as chat requests: conversions, the store, and errors
// that name the dialect's own fields.
#include <gtest/gtest.h>

#include "server/messages_api.h"
#include "server/responses_api.h"

namespace flashlm::server {
namespace {

using json = nlohmann::json;

std::optional<ApiError> responses(const std::string& body, CompletionRequest* req, ResponsesRequest* meta,
                                  const json& history = json()) {
  return parse_responses_request(json::parse(body), body, history, req, meta);
}

TEST(ResponsesApi, InputItemsBecomeChatMessages) {
  CompletionRequest req;
  ResponsesRequest meta;
  auto e = responses(R"({"instructions": "Be brief.", "max_output_tokens": 9, "input": [
      {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
      {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
      {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{\"x\": 1}"},
      {"type": "function_call_output", "call_id": "c1", "output": "sunny"}],
      "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
      "tool_choice": {"type": "function", "name": "w"}})",
                     &req, &meta);
  ASSERT_FALSE(e.has_value()) << e->message;
  ASSERT_EQ(req.messages.size(), 4u);  // system, user, one assistant turn with two calls, tool
  EXPECT_EQ(req.messages[0]["role"], "system");
  EXPECT_EQ(req.messages[2]["tool_calls"].size(), 2u);
  EXPECT_EQ(req.messages[3]["tool_call_id"], "c1");
  EXPECT_EQ(req.max_tokens, 9);
  EXPECT_EQ(req.tools.choice, ToolChoice::kNamed);
  EXPECT_EQ(meta.conversation.size(), 3u);  // instructions do not carry over
}

TEST(ResponsesApi, HistoryComesFirst) {
  CompletionRequest req;
  ResponsesRequest meta;
  const json history = json::array({{{"role", "user"}, {"content", "a"}}, {{"role", "assistant"}, {"content", "b"}}});
  ASSERT_FALSE(responses(R"({"input": "c"})", &req, &meta, history).has_value());
  ASSERT_EQ(req.messages.size(), 3u);
  EXPECT_EQ(req.messages[2]["content"], "c");
}

TEST(ResponsesApi, ErrorsNameTheResponsesFields) {
  CompletionRequest req;
  ResponsesRequest meta;
  EXPECT_EQ(responses(R"({"input": "x", "max_output_tokens": 0})", &req, &meta)->param, "max_output_tokens");
  EXPECT_EQ(responses(R"({"input": "x", "tools": [{"type": "function", "name": "a b"}]})", &req, &meta)->param,
            "tools[0].name");
  EXPECT_EQ(responses(R"({"input": "x", "text": {"format": {"type": "json_schema", "schema": {"not": {}}}}})", &req,
                      &meta)
                ->param,
            "text.format.schema");
  EXPECT_EQ(responses(R"({"input": [{"type": "reasoning"}]})", &req, &meta)->param, "input[0].type");
  EXPECT_EQ(responses(R"({"input": "x", "background": true})", &req, &meta)->param, "background");
  EXPECT_EQ(responses(R"({"input": "x", "previous_response_id": 3})", &req, &meta)->param, "previous_response_id");
  EXPECT_EQ(responses(R"({"model": "m"})", &req, &meta)->param, "input");
}

TEST(ResponsesApi, StoreDropsTheOldestPastItsBounds) {
  ResponseStore by_count(2);
  by_count.put("a", json::array({1}));
  by_count.put("b", json::array({2}));
  by_count.put("c", json::array({3}));
  EXPECT_FALSE(by_count.get("a").has_value());
  EXPECT_TRUE(by_count.get("c").has_value());
  ResponseStore by_bytes(100, 24);
  by_bytes.put("a", json::array({"0123456789"}));
  by_bytes.put("b", json::array({"0123456789"}));
  EXPECT_FALSE(by_bytes.get("a").has_value());
  EXPECT_EQ(by_bytes.size(), 1u);
  by_bytes.put("huge", json::array({std::string(100, 'x')}));  // larger than the store: not kept
  EXPECT_FALSE(by_bytes.get("huge").has_value());
}

TEST(MessagesApi, BlocksBecomeChatMessages) {
  const std::string body = R"({"max_tokens": 7, "system": [{"type": "text", "text": "S"}], "stop_sequences": ["x"],
      "messages": [{"role": "user", "content": "weather?"},
                   {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                     {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "P"}}]},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                     {"type": "text", "text": "and tomorrow?"}]}],
      "tools": [{"name": "w", "input_schema": {"type": "object"}}], "tool_choice": {"type": "any"}})";
  CompletionRequest req;
  auto e = parse_messages_request(json::parse(body), body, &req);
  ASSERT_FALSE(e.has_value()) << e->message;
  ASSERT_EQ(req.messages.size(), 5u);  // system, user, assistant + call, tool, user
  EXPECT_EQ(req.messages[2]["tool_calls"][0]["function"]["arguments"], R"({"city":"P"})");
  EXPECT_EQ(req.messages[3]["role"], "tool");
  EXPECT_EQ(req.messages[4]["content"], "and tomorrow?");
  EXPECT_EQ(req.max_tokens, 7);
  EXPECT_EQ(req.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(req.tools.choice, ToolChoice::kRequired);
}

TEST(MessagesApi, ErrorsNameTheMessagesFields) {
  auto err = [](const std::string& body) {
    CompletionRequest req;
    auto e = parse_messages_request(json::parse(body), body, &req);
    EXPECT_TRUE(e.has_value()) << body;
    return e.value_or(ApiError{});
  };
  const std::string m = R"("messages": [{"role": "user", "content": "x"}])";
  EXPECT_EQ(err("{" + m + "}").param, "max_tokens");
  EXPECT_EQ(err(R"({"max_tokens": 0, )" + m + "}").param, "max_tokens");
  EXPECT_EQ(err(R"({"max_tokens": 5, "stop_sequences": 3, )" + m + "}").param, "stop_sequences");
  ApiError e = err(R"({"max_tokens": 5, "tools": [{"name": "f", "input_schema": {"$ref": "#/x"}}], )" + m + "}");
  EXPECT_EQ(e.param, "tools[0].input_schema");
  EXPECT_NE(e.message.find("tools[0].input_schema"), std::string::npos) << e.message;
  EXPECT_EQ(err(R"({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]})").param,
            "messages[0].content[0].type");
  const HttpReply r = anthropic_error_reply(e);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["type"], "invalid_request_error");
}

}  // namespace
}  // namespace flashlm::server
