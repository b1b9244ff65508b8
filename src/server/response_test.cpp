// Response formatting against OpenAI's documented shapes: chat.completion,
// chat.completion.chunk, text_completion, usage, logprobs, SSE and chunked framing.
#include "server/response.h"

#include <gtest/gtest.h>

#include "server/http_message.h"
#include "server/sse.h"

namespace flashlm::server {
namespace {

using nlohmann::json;

std::string piece(int32_t t) { return t == 7 ? "\xc3" : "t" + std::to_string(t); }  // 7: half a character

ResponseMeta meta(Endpoint e) {
  return ResponseMeta{e, e == Endpoint::kChat ? "chatcmpl-1" : "cmpl-1", 1700000000, "m", ""};
}

template <typename J>
std::vector<std::string> keys(const J& j) {
  std::vector<std::string> k;
  for (auto it = j.begin(); it != j.end(); ++it) k.push_back(it.key());
  return k;
}

TokenInfo tok(int32_t id, float lp, std::vector<TokenLogprob> top = {}) {
  TokenInfo t;
  t.token = id;
  t.logprobs.chosen = lp;
  t.logprobs.top = std::move(top);
  return t;
}

TEST(ResponseTest, ChatCompletionBody) {
  ChoiceResult c{0, "Paris.", "stop", {}, {}, 0, {}, false};
  const std::string text = completion_body(meta(Endpoint::kChat), {c}, Usage{12, 3, 4}, false, piece);
  const auto j = nlohmann::ordered_json::parse(text);
  EXPECT_EQ(keys(j), (std::vector<std::string>{"id", "object", "created", "model", "choices", "usage"}));
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"], "chatcmpl-1");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "m");
  ASSERT_EQ(j["choices"].size(), 1u);
  const auto& ch = j["choices"][0];
  EXPECT_EQ(ch["index"], 0);
  EXPECT_EQ(ch["message"]["role"], "assistant");
  EXPECT_EQ(ch["message"]["content"], "Paris.");
  EXPECT_TRUE(ch["message"]["refusal"].is_null());
  EXPECT_TRUE(ch["logprobs"].is_null());
  EXPECT_EQ(ch["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 12);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 15);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
}

TEST(ResponseTest, ChatLogprobs) {
  ChoiceResult c{1, "x", "length", {tok(5, -0.5f, {{5, -0.5f}, {7, -1.25f}})}, {}, 0, {}, false};
  const json j = json::parse(completion_body(meta(Endpoint::kChat), {c}, Usage{1, 1, 0}, true, piece));
  const json& lp = j["choices"][0]["logprobs"];
  EXPECT_TRUE(lp["refusal"].is_null());
  ASSERT_EQ(lp["content"].size(), 1u);
  const json& e = lp["content"][0];
  EXPECT_EQ(e["token"], "t5");
  EXPECT_FLOAT_EQ(e["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(e["bytes"], (std::vector<int>{'t', '5'}));
  ASSERT_EQ(e["top_logprobs"].size(), 2u);
  // A token that is part of a UTF-8 sequence: U+FFFD in "token", the true byte in "bytes".
  EXPECT_EQ(e["top_logprobs"][1]["token"], "\xef\xbf\xbd");
  EXPECT_EQ(e["top_logprobs"][1]["bytes"], std::vector<int>{0xc3});
  EXPECT_EQ(j["choices"][0]["index"], 1);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
}

TEST(ResponseTest, TextCompletionBodyWithLogprobs) {
  ChoiceResult c{0, "t1t22", "length", {tok(1, -0.1f, {{1, -0.1f}, {2, -2.0f}}), tok(22, -0.2f, {{22, -0.2f}})}, {}, 0, {}, false};
  const auto j =
      nlohmann::ordered_json::parse(completion_body(meta(Endpoint::kCompletion), {c}, Usage{2, 2, 0}, true, piece));
  EXPECT_EQ(j["object"], "text_completion");
  const auto& ch = j["choices"][0];
  EXPECT_EQ(keys(ch), (std::vector<std::string>{"text", "index", "logprobs", "finish_reason"}));
  EXPECT_EQ(ch["text"], "t1t22");
  EXPECT_EQ(ch["logprobs"]["tokens"], (std::vector<std::string>{"t1", "t22"}));
  EXPECT_EQ(ch["logprobs"]["text_offset"], (std::vector<int>{0, 2}));
  EXPECT_FLOAT_EQ(ch["logprobs"]["token_logprobs"][1].get<float>(), -0.2f);
  EXPECT_FLOAT_EQ(ch["logprobs"]["top_logprobs"][0]["t2"].get<float>(), -2.0f);
}

// echo with logprobs: the prompt's entries (the first one null), then the generated
// tokens', whose offsets continue after the echoed text.
TEST(ResponseTest, TextCompletionBodyWithEchoedPrompt) {
  const ojson prompt = echo_text_logprobs(3, {tok(4, -1.5f, {{9, -0.5f}}), tok(22, -0.25f, {{22, -0.25f}})}, piece);
  EXPECT_EQ(prompt["tokens"], (std::vector<std::string>{"t3", "t4", "t22"}));
  EXPECT_TRUE(prompt["token_logprobs"][0].is_null());
  EXPECT_TRUE(prompt["top_logprobs"][0].is_null());
  EXPECT_EQ(prompt["text_offset"], (std::vector<int>{0, 2, 4}));
  ChoiceResult c{0, "t3t4t22t1", "length", {tok(1, -0.1f, {{1, -0.1f}})}, prompt, 7, {}, false};
  const auto j =
      nlohmann::ordered_json::parse(completion_body(meta(Endpoint::kCompletion), {c}, Usage{3, 1, 0}, true, piece));
  const auto& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], (std::vector<std::string>{"t3", "t4", "t22", "t1"}));
  EXPECT_EQ(lp["text_offset"], (std::vector<int>{0, 2, 4, 7}));
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_FLOAT_EQ(lp["token_logprobs"][1].get<float>(), -1.5f);
  EXPECT_FLOAT_EQ(lp["token_logprobs"][3].get<float>(), -0.1f);
  EXPECT_FLOAT_EQ(lp["top_logprobs"][1]["t9"].get<float>(), -0.5f);
  EXPECT_EQ(j["choices"][0]["text"], "t3t4t22t1");
}

TEST(ResponseTest, ChatChunks) {
  ChunkChoice first;
  first.first = true;
  auto j = nlohmann::ordered_json::parse(chunk_json(meta(Endpoint::kChat), first, false));
  EXPECT_EQ(keys(j), (std::vector<std::string>{"id", "object", "created", "model", "choices"}));
  EXPECT_EQ(j["object"], "chat.completion.chunk");
  EXPECT_EQ(j["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["delta"]["content"], "");
  EXPECT_TRUE(j["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());

  ChunkChoice mid;
  mid.index = 1;
  mid.text = "Hel";
  j = nlohmann::ordered_json::parse(chunk_json(meta(Endpoint::kChat), mid, true));
  EXPECT_EQ(j["choices"][0]["delta"], json({{"content", "Hel"}}));
  EXPECT_EQ(j["choices"][0]["index"], 1);
  EXPECT_TRUE(j.contains("usage") && j["usage"].is_null());  // include_usage: null on every chunk

  ChunkChoice last;
  last.finish_reason = "stop";
  j = nlohmann::ordered_json::parse(chunk_json(meta(Endpoint::kChat), last, false));
  EXPECT_TRUE(j["choices"][0]["delta"].empty());  // the final chunk's delta is {}
  EXPECT_TRUE(j["choices"][0]["delta"].is_object());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(j.contains("usage"));

  j = nlohmann::ordered_json::parse(usage_chunk_json(meta(Endpoint::kChat), Usage{5, 6, 0}));
  EXPECT_TRUE(j["choices"].is_array() && j["choices"].empty());
  EXPECT_EQ(j["usage"]["total_tokens"], 11);
}

TEST(ResponseTest, TextChunks) {
  ChunkChoice c;
  c.text = "abc";
  auto j = nlohmann::ordered_json::parse(chunk_json(meta(Endpoint::kCompletion), c, false));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "abc");
  EXPECT_TRUE(j["choices"][0]["finish_reason"].is_null());
  c.text = "";
  c.finish_reason = "length";
  j = nlohmann::ordered_json::parse(chunk_json(meta(Endpoint::kCompletion), c, false));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["text"], "");
}

TEST(ResponseTest, FinishReasons) {
  EXPECT_EQ(finish_reason_text(FinishReason::kStop), "stop");
  EXPECT_EQ(finish_reason_text(FinishReason::kLength), "length");
  EXPECT_EQ(finish_reason_text(FinishReason::kNone), "");
}

TEST(ResponseTest, Ids) {
  const std::string a = make_response_id(Endpoint::kChat), b = make_response_id(Endpoint::kChat);
  EXPECT_EQ(a.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(a.size(), 9u + 24u);
  EXPECT_NE(a, b);
  EXPECT_EQ(make_response_id(Endpoint::kCompletion).rfind("cmpl-", 0), 0u);
}

TEST(ResponseTest, Models) {
  const json j = json::parse(models_body({"SmolLM2"}, 5));
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "SmolLM2");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][0]["created"], 5);
  EXPECT_TRUE(j["data"][0]["owned_by"].is_string());
}

TEST(SseTest, EventFraming) {
  EXPECT_EQ(sse_event(R"({"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  // Compact JSON never breaks the one-line data field, even with newlines in text.
  ChunkChoice c;
  c.text = "line1\nline2\r\n";
  const std::string ev = sse_event(chunk_json(meta(Endpoint::kChat), c, false));
  EXPECT_EQ(ev.find('\n'), ev.size() - 2);
  EXPECT_EQ(ev.find('\r'), std::string::npos);
}

TEST(SseTest, ChunkedTransferCoding) {
  EXPECT_EQ(http_chunk("hello"), "5\r\nhello\r\n");
  EXPECT_EQ(http_chunk(std::string(255, 'x')), "ff\r\n" + std::string(255, 'x') + "\r\n");
  EXPECT_EQ(http_chunk(""), "");  // an empty chunk would end the body
  EXPECT_EQ(http_last_chunk(), "0\r\n\r\n");
}

TEST(HttpMessageTest, ResponseHead) {
  const std::string h = response_head(429, "application/json", 12, false, true, {{"Retry-After", "1"}});
  EXPECT_EQ(h.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0), 0u);
  EXPECT_NE(h.find("\r\nContent-Length: 12\r\n"), std::string::npos);
  EXPECT_NE(h.find("\r\nConnection: keep-alive\r\n"), std::string::npos);
  EXPECT_NE(h.find("\r\nRetry-After: 1\r\n"), std::string::npos);
  EXPECT_EQ(h.substr(h.size() - 4), "\r\n\r\n");
  const std::string s = response_head(200, "text/event-stream", -1, true, false, {});
  EXPECT_NE(s.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(s.find("Content-Length"), std::string::npos);
  EXPECT_NE(s.find("\r\nConnection: close\r\n"), std::string::npos);
}

}  // namespace
}  // namespace flashlm::server
