// The handler's side of one HTTP exchange: a complete reply, or a streamed body. The
// connection (http_session.cpp) implements it; tests use a recording fake.
// Every method runs on the server's I/O thread.
#pragma once

#include <functional>
#include <string>

#include "server/http_message.h"

namespace flashlm::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // target without the query string
  std::string body;
  std::string authorization;  // the Authorization header, "" when absent
  std::string x_api_key;      // Anthropic clients send the key as X-Api-Key
  std::string origin;         // Origin (CORS), "" when absent
  std::string cors_request_headers;  // Access-Control-Request-Headers of a preflight
};

class Responder {
 public:
  virtual ~Responder() = default;

  virtual void reply(HttpReply r) = 0;
  virtual void start_stream(int status, const std::string& content_type, const Headers& extra) = 0;
  // Queues body bytes. False when the client is gone or has more unread output than the
  // bound allows: the exchange is then aborted and the caller should stop producing.
  virtual bool write(std::string data) = 0;
  virtual void end_stream() = 0;
  // fn runs once (posted, never from inside a Responder call) if the client goes away
  // before the response ends: disconnect, reset, failed or timed-out write, overflow.
  virtual void on_abort(std::function<void()> fn) = 0;
};

}  // namespace flashlm::server
