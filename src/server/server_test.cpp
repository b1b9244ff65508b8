// The server end to end over real loopback sockets, with a fake backend: routing and
// error codes, OpenAI JSON and SSE on the wire, keep-alive and pipelining, cancellation
// when a client disconnects or reads too slowly, and the drain on shutdown.
#include "server/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "server/fake_backend_test_util.h"

namespace flashlm::server {
namespace {

using nlohmann::json;
using testing::FakeBackend;
using testing::FakeOptions;
using namespace std::chrono_literals;

struct Response {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;  // de-chunked
  bool chunked = false;
};

int connect_to(uint16_t port, int rcvbuf = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};  // no test may hang on a read
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

void send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string read_all(int fd) {
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Splits one raw response (the whole connection's bytes) into head and body.
Response parse_response(const std::string& raw) {
  Response r;
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  r.head = raw.substr(0, end + 2);
  r.status = std::atoi(raw.c_str() + 9);
  std::string rest = raw.substr(end + 4);
  r.chunked = r.head.find("Transfer-Encoding: chunked") != std::string::npos;
  if (!r.chunked) {
    r.body = rest;
    return r;
  }
  size_t pos = 0;
  for (;;) {
    const size_t line_end = rest.find("\r\n", pos);
    if (line_end == std::string::npos) break;
    const size_t size = std::stoul(rest.substr(pos, line_end - pos), nullptr, 16);
    if (size == 0) break;
    r.body += rest.substr(line_end + 2, size);
    pos = line_end + 2 + size + 2;
  }
  return r;
}

std::string request(const std::string& method, const std::string& path, const std::string& body = "",
                    const std::string& extra_headers = "") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + extra_headers;
  if (!body.empty() || method == "POST") {
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return r + "\r\n" + body;
}

std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> events;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event: " << body.substr(pos);
    if (end == std::string::npos) break;
    const std::string ev = body.substr(pos, end - pos);
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    events.push_back(ev.substr(6));
    pos = end + 2;
  }
  return events;
}

template <typename F>
bool wait_for(F pred, std::chrono::milliseconds limit = 5000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

class ServerTest : public ::testing::Test {
 protected:
  void start(FakeOptions fo = {}, ServerOptions so = {}, bool load = true) {
    so.port = 0;
    so.handle_signals = false;
    Result<std::unique_ptr<Server>> s = Server::create(so);
    ASSERT_TRUE(s) << s.message();
    server_ = std::move(s.value());
    port_ = server_->port();
    thread_ = std::thread([this] { exit_code_ = server_->run(); });
    if (load) {
      auto fake = std::make_unique<FakeBackend>(fo);
      fake_ = fake.get();
      server_->set_backend(std::move(fake));
      ASSERT_TRUE(wait_for([&] { return call(request("GET", "/health")).status == 200; }));
    }
  }

  void TearDown() override {
    if (server_) {
      server_->shutdown();
      thread_.join();
      EXPECT_EQ(exit_code_, 0);
      server_.reset();
    }
  }

  Response call(const std::string& raw) {
    const int fd = connect_to(port_);
    if (fd < 0) return {};
    send_all(fd, raw);
    Response r = parse_response(read_all(fd));
    ::close(fd);
    return r;
  }

  json call_json(const std::string& raw, int expect_status) {
    Response r = call(raw);
    EXPECT_EQ(r.status, expect_status) << r.head << r.body;
    return json::parse(r.body, nullptr, false);
  }

  std::unique_ptr<Server> server_;
  std::thread thread_;
  int exit_code_ = -1;
  uint16_t port_ = 0;
  FakeBackend* fake_ = nullptr;
};

const std::string kChat = R"({"model": "x", "messages": [{"role": "user", "content": "hi"}])";

TEST_F(ServerTest, HealthIsLoadingUntilTheBackendArrives) {
  start({}, {}, /*load=*/false);
  Response h = call(request("GET", "/health"));
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(json::parse(h.body), json({{"status", "loading"}}));
  EXPECT_EQ(call(request("POST", "/v1/chat/completions", kChat + "}")).status, 503);
  EXPECT_EQ(call(request("GET", "/")).status, 200);  // the page is there already
  server_->set_backend(std::make_unique<FakeBackend>());
  ASSERT_TRUE(wait_for([&] { return call(request("GET", "/health")).status == 200; }));
  EXPECT_EQ(json::parse(call(request("GET", "/health")).body), json({{"status", "ok"}}));
}

TEST_F(ServerTest, RoutesAndMethods) {
  start();
  json e = call_json(request("GET", "/nope"), 404);
  EXPECT_EQ(e["error"]["code"], "unknown_url");
  Response r = call(request("POST", "/health", "{}"));
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.head.find("Allow: GET"), std::string::npos);
  r = call(request("GET", "/v1/chat/completions"));
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.head.find("Allow: POST"), std::string::npos);
  json models = call_json(request("GET", "/v1/models?x=1"), 200);
  EXPECT_EQ(models["data"][0]["id"], "fake-model");
  Response page = call(request("GET", "/"));
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.head.find("text/html"), std::string::npos);
  EXPECT_NE(page.body.find("/v1/chat/completions"), std::string::npos);
}

TEST_F(ServerTest, ChatCompletion) {
  start();
  json j = call_json(request("POST", "/v1/chat/completions", kChat + R"(, "seed": 3, "stop": ["zz"]})"), 200);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "fake-model");  // the loaded model, whatever the client named
  EXPECT_EQ(j["choices"][0]["message"]["content"], "ababababab");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  const int64_t n_prompt = static_cast<int64_t>(std::string("user:hi\n").size());
  EXPECT_EQ(j["usage"]["prompt_tokens"], n_prompt);
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
  EXPECT_EQ(j["usage"]["total_tokens"], n_prompt + 5);
  EXPECT_EQ(fake_->last_request().stop, std::vector<std::string>{"zz"});
  EXPECT_EQ(fake_->last_request().sampling.seed, 3u);
}

TEST_F(ServerTest, MaxTokensIsLengthAndHugeMaxTokensIsClamped) {
  start();
  json j = call_json(request("POST", "/v1/chat/completions", kChat + R"(, "max_tokens": 2})"), 200);
  EXPECT_EQ(j["choices"][0]["message"]["content"], "abab");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  j = call_json(request("POST", "/v1/chat/completions", kChat + R"(, "max_tokens": 1000000000000})"), 200);
  EXPECT_EQ(fake_->last_request().max_tokens, 64 - 8);  // n_ctx - prompt
}

TEST_F(ServerTest, TextCompletionWithTokenPromptAndLogprobs) {
  start();
  json j =
      call_json(request("POST", "/v1/completions", R"({"prompt": [1, 2, 3], "logprobs": 2, "max_tokens": 3})"), 200);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "ababab");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 3);
  const json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(lp["text_offset"], (std::vector<int>{0, 1, 2}));  // one byte per fake token piece
  json e = call_json(request("POST", "/v1/completions", R"({"prompt": [1, 999]})"), 400);
  EXPECT_EQ(e["error"]["param"], "prompt");
}

// echo: the prompt's text opens the choice's text; with logprobs its tokens come first
// (the first one null), the generated ones after, offsets running on; max_tokens 0 only
// scores; streamed, the prompt is the first chunk; n > 1: every choice echoes.
TEST_F(ServerTest, TextCompletionEcho) {
  start();
  json j = call_json(
      request("POST", "/v1/completions", R"({"prompt": "xyz", "echo": true, "logprobs": 1, "max_tokens": 2})"), 200);
  const json& c = j["choices"][0];
  EXPECT_EQ(c["text"], "xyzabab");
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_EQ(c["logprobs"]["tokens"], (std::vector<std::string>{"x", "y", "z", "a", "a"}));
  EXPECT_TRUE(c["logprobs"]["token_logprobs"][0].is_null());
  EXPECT_TRUE(c["logprobs"]["top_logprobs"][0].is_null());
  EXPECT_FLOAT_EQ(c["logprobs"]["token_logprobs"][1].get<float>(), -1.1f);
  EXPECT_FLOAT_EQ(c["logprobs"]["token_logprobs"][3].get<float>(), -0.5f);
  EXPECT_EQ(c["logprobs"]["top_logprobs"][2].size(), 1u);
  EXPECT_EQ(c["logprobs"]["text_offset"], (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(fake_->last_request().prompt_logprobs, 1);

  j = call_json(request("POST", "/v1/completions", R"({"prompt": [120, 121], "echo": true, "logprobs": 0, "max_tokens": 0})"),
                200);
  EXPECT_EQ(j["choices"][0]["text"], "xy");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["logprobs"]["tokens"].size(), 2u);
  EXPECT_EQ(j["usage"]["completion_tokens"], 0);

  // echo without logprobs repeats the text and scores nothing.
  j = call_json(request("POST", "/v1/completions", R"({"prompt": "q", "echo": true, "max_tokens": 1, "n": 2})"), 200);
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][0]["text"], "qab");
  EXPECT_EQ(j["choices"][1]["text"], "qab");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(fake_->last_request().prompt_logprobs, -1);

  Response r = call(request("POST", "/v1/completions",
                            R"({"prompt": "xy", "echo": true, "logprobs": 1, "max_tokens": 1, "stream": true})"));
  ASSERT_EQ(r.status, 200);
  const std::vector<std::string> ev = sse_data(r.body);
  ASSERT_GE(ev.size(), 3u);
  const json c0 = json::parse(ev[0]);
  EXPECT_EQ(c0["choices"][0]["text"], "xy");
  EXPECT_EQ(c0["choices"][0]["logprobs"]["tokens"], (std::vector<std::string>{"x", "y"}));
  EXPECT_NE(r.body.find(R"("text_offset":[2])"), std::string::npos);  // the generated token follows the prompt

  EXPECT_EQ(call_json(request("POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 0})"), 400)["error"]["param"],
            "max_tokens");
}

TEST_F(ServerTest, TokenizerInfoAndVllmTokenize) {
  start();
  json j = call_json(request("GET", "/tokenizer_info", ""), 200);
  EXPECT_EQ(j["eos_token"], "</s>");
  EXPECT_TRUE(j["bos_token"].is_null());
  EXPECT_EQ(j["model_max_length"], 64);
  j = call_json(request("POST", "/tokenize", R"({"prompt": "hi", "add_special_tokens": false})"), 200);
  EXPECT_EQ(j["tokens"], (std::vector<int>{'h', 'i'}));
}

TEST_F(ServerTest, NChoices) {
  start();
  json j = call_json(request("POST", "/v1/chat/completions", kChat + R"(, "n": 2, "seed": 10})"), 200);
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][1]["index"], 1);
  EXPECT_EQ(j["usage"]["completion_tokens"], 10);
  EXPECT_EQ(fake_->submitted.load(), 2);
}

TEST_F(ServerTest, ChatStreamIsOpenAiSse) {
  start();
  Response r = call(request("POST", "/v1/chat/completions",
                            kChat + R"(, "stream": true, "stream_options": {"include_usage": true}})"));
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.chunked);
  EXPECT_NE(r.head.find("Content-Type: text/event-stream"), std::string::npos);
  std::vector<std::string> ev = sse_data(r.body);
  ASSERT_EQ(ev.size(), 1u + 5u + 1u + 1u + 1u);  // role, 5 pieces, finish, usage, [DONE]
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string text;
  std::string id;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    json c = json::parse(ev[i]);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (id.empty()) id = c["id"];
    EXPECT_EQ(c["id"], id);  // one id for the whole stream
    if (i + 2 < ev.size()) {
      EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());
      ASSERT_EQ(c["choices"].size(), 1u);
      if (c["choices"][0]["delta"].contains("content")) text += c["choices"][0]["delta"]["content"];
    }
  }
  EXPECT_EQ(json::parse(ev[0])["choices"][0]["delta"]["role"], "assistant");
  json fin = json::parse(ev[6]);
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(fin["choices"][0]["delta"].empty());
  json usage = json::parse(ev[7]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 5);
  EXPECT_EQ(text, "ababababab");
}

TEST_F(ServerTest, CompletionStreamWithTwoChoices) {
  start();
  Response r = call(request("POST", "/v1/completions", R"({"prompt": "x", "stream": true, "n": 2, "max_tokens": 2})"));
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> ev = sse_data(r.body);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string text[2];
  int finished = 0;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    json c = json::parse(ev[i]);
    EXPECT_EQ(c["object"], "text_completion");
    const int idx = c["choices"][0]["index"];
    text[idx] += c["choices"][0]["text"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) {
      EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
      ++finished;
    }
  }
  EXPECT_EQ(text[0], "abab");
  EXPECT_EQ(text[1], "abab");
  EXPECT_EQ(finished, 2);
}

TEST_F(ServerTest, BadRequests) {
  start();
  EXPECT_EQ(call_json(request("POST", "/v1/chat/completions", "{nope"), 400)["error"]["code"], "invalid_json");
  EXPECT_EQ(call_json(request("POST", "/v1/chat/completions", kChat + R"(, "temperature": 9})"), 400)["error"]["param"],
            "temperature");
  EXPECT_EQ(call_json(request("POST", "/v1/chat/completions",
                              "{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\"}]}"),
                      400)["error"]["code"],
            "invalid_json");
  json e = call_json(request("POST", "/v1/chat/completions",
                             R"({"messages": [{"role": "user", "content": ")" + std::string(100, 'x') + R"("}]})"),
                     400);
  EXPECT_EQ(e["error"]["code"], "context_length_exceeded");
  EXPECT_NE(e["error"]["message"].get<std::string>().find("64"), std::string::npos);  // names the context size
  e = call_json(request("POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "RAISE"}]})"),
                400);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("alternate"), std::string::npos);
  // A malformed request line.
  Response r = call("GARBAGE\r\n\r\n");
  EXPECT_EQ(r.status, 400);
}

TEST_F(ServerTest, BodyTooLarge) {
  ServerOptions so;
  so.limits.max_body = 1024;
  start({}, so);
  Response r = call(request("POST", "/v1/chat/completions", std::string(4096, ' ')));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json::parse(r.body)["error"]["type"], "invalid_request_error");
}

TEST_F(ServerTest, ExpectContinue) {
  ServerOptions so;
  so.limits.max_body = 1024;
  start({}, so);
  const std::string body = R"({"content": "hi"})";
  const int fd = connect_to(port_);
  send_all(fd, "POST /tokenize HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n");
  char buf[64] = {};
  ASSERT_GT(::recv(fd, buf, sizeof(buf) - 1, 0), 0);
  EXPECT_STREQ(buf, "HTTP/1.1 100 Continue\r\n\r\n");
  send_all(fd, body);
  EXPECT_EQ(parse_response(read_all(fd)).body, R"({"tokens":[104,105]})");
  ::close(fd);
  // Too large: refused from the head alone, the body is never asked for.
  const int fd2 = connect_to(port_);
  send_all(fd2, "POST /tokenize HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_EQ(parse_response(read_all(fd2)).status, 413);
  ::close(fd2);
}

TEST_F(ServerTest, ApiKey) {
  ServerOptions so;
  so.api_key = "sekrit";
  start({}, so);
  json e = call_json(request("GET", "/v1/models"), 401);
  EXPECT_EQ(e["error"]["code"], "missing_api_key");
  e = call_json(request("GET", "/v1/models", "", "Authorization: Bearer wrong\r\n"), 401);
  EXPECT_EQ(e["error"]["code"], "invalid_api_key");
  call_json(request("GET", "/v1/models", "", "Authorization: Bearer sekrit\r\n"), 200);
  EXPECT_EQ(call(request("GET", "/health")).status, 200);  // public
}

TEST_F(ServerTest, QueueFullIs429WithRetryAfter) {
  FakeOptions fo;
  fo.parallel = 1;
  fo.max_queue = 0;
  fo.tokens = 100000;
  fo.tick = 1ms;
  start(fo);
  const int fd = connect_to(port_);
  send_all(fd, request("POST", "/v1/chat/completions", kChat + R"(, "stream": true})"));
  ASSERT_TRUE(wait_for([&] { return fake_->submitted.load() == 1; }));
  Response r = call(request("POST", "/v1/chat/completions", kChat + "}"));
  EXPECT_EQ(r.status, 429);
  EXPECT_NE(r.head.find("Retry-After: 1"), std::string::npos);
  ::close(fd);
  ASSERT_TRUE(wait_for([&] { return fake_->cancelled.load() == 1; }));  // the disconnect freed the slot
  EXPECT_EQ(call(request("POST", "/v1/chat/completions", kChat + R"(, "max_tokens": 1})")).status, 200);
}

TEST_F(ServerTest, DisconnectMidStreamCancels) {
  FakeOptions fo;
  fo.tokens = 100000;
  fo.tick = 1ms;
  start(fo);
  const int fd = connect_to(port_);
  send_all(fd, request("POST", "/v1/chat/completions", kChat + R"(, "stream": true})"));
  char buf[256];
  ASSERT_GT(::recv(fd, buf, sizeof(buf), 0), 0);  // the stream has started
  ::close(fd);
  EXPECT_TRUE(wait_for([&] { return fake_->cancelled.load() == 1; }));
  EXPECT_EQ(call(request("GET", "/health")).status, 200);
}

TEST_F(ServerTest, DisconnectWhileWaitingForFullReplyCancels) {
  FakeOptions fo;
  fo.tokens = 100000;
  fo.tick = 1ms;
  start(fo);
  const int fd = connect_to(port_);
  send_all(fd, request("POST", "/v1/chat/completions", kChat + "}"));
  ASSERT_TRUE(wait_for([&] { return fake_->submitted.load() == 1; }));
  ::close(fd);  // nothing was written yet: only the read side can notice
  EXPECT_TRUE(wait_for([&] { return fake_->cancelled.load() == 1; }));
}

TEST_F(ServerTest, SlowReaderIsCancelledNotBuffered) {
  FakeOptions fo;
  fo.tokens = 1000000;
  fo.piece = std::string(32 << 10, 'a');
  fo.tick = 100us;
  ServerOptions so;
  so.limits.max_pending = 256u << 10;
  start(fo, so);
  const int fd = connect_to(port_, /*rcvbuf=*/4096);
  send_all(fd, request("POST", "/v1/completions", R"({"prompt": "x", "stream": true})"));
  // Never read: the kernel buffers fill, then our queue passes the bound.
  EXPECT_TRUE(wait_for([&] { return fake_->cancelled.load() == 1; }, 20000ms));
  ::close(fd);
  EXPECT_EQ(call(request("GET", "/health")).status, 200);
}

TEST_F(ServerTest, KeepAliveAndPipelining) {
  start();
  const int fd = connect_to(port_);
  const std::string keep = "POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n{\"content\": \"AB\"}";
  send_all(fd, keep);
  // Two more at once (pipelined); the last one closes.
  send_all(fd, keep +
                   "POST /detokenize HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 21\r\n\r\n"
                   "{\"tokens\": [72, 105]}");
  const std::string all = read_all(fd);
  ::close(fd);
  size_t n_responses = 0;
  for (size_t p = all.find("HTTP/1.1 200"); p != std::string::npos; p = all.find("HTTP/1.1 200", p + 1)) ++n_responses;
  EXPECT_EQ(n_responses, 3u) << all;
  EXPECT_NE(all.find(R"({"tokens":[65,66]})"), std::string::npos) << all;
  EXPECT_NE(all.find(R"({"content":"Hi"})"), std::string::npos) << all;
}

TEST_F(ServerTest, SlowPromptPreparationDoesNotStallOthers) {
  start();
  const int fd = connect_to(port_);
  send_all(fd, request("POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "SLOW"}]})"));
  std::this_thread::sleep_for(100ms);  // its template now takes a second on the preparation thread
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(call(request("GET", "/health")).status, 200);
  EXPECT_EQ(call(request("GET", "/metrics")).status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 800ms);  // not blocked behind the 1 s template
  EXPECT_EQ(parse_response(read_all(fd)).status, 200);
  ::close(fd);
}

TEST_F(ServerTest, DetokenizeInvalidUtf8IsReplaced) {
  start();
  json j = call_json(request("POST", "/detokenize", R"({"tokens": [104, 195]})"), 200);
  EXPECT_EQ(j["content"], "h\xef\xbf\xbd");
}

TEST_F(ServerTest, MetricsCountRequests) {
  start();
  call(request("POST", "/v1/chat/completions", kChat + "}"));
  call(request("GET", "/nope"));
  Response m = call(request("GET", "/metrics"));
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.head.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(m.body.find("flashlm_requests_total{status=\"404\"} 1"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("flashlm_time_to_first_token_seconds_count 1"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("flashlm_inter_token_latency_seconds_count 4"), std::string::npos) << m.body;
}

TEST_F(ServerTest, ShutdownDrainsInFlightStreams) {
  FakeOptions fo;
  fo.tokens = 50;
  fo.tick = 2ms;
  start(fo);
  const int fd = connect_to(port_);
  send_all(fd, request("POST", "/v1/chat/completions", kChat + R"(, "stream": true})"));
  ASSERT_TRUE(wait_for([&] { return fake_->submitted.load() == 1; }));
  server_->shutdown();
  Response r = parse_response(read_all(fd));
  ::close(fd);
  std::vector<std::string> ev = sse_data(r.body);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back(), "[DONE]");  // finished, not cut off
  EXPECT_EQ(ev.size(), 1u + 50u + 1u + 1u);
  thread_.join();
  EXPECT_EQ(exit_code_, 0);
  server_.reset();
}

}  // namespace
}  // namespace flashlm::server
