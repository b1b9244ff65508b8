// The bytes of HTTP/1.1 response heads, and the replies handlers produce. Requests are
// parsed by Boost.Beast (http_session.cpp); responses are written from these strings so
// complete replies and streams share one write queue.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "server/api_error.h"

namespace flashlm::server {

using Headers = std::vector<std::pair<std::string, std::string>>;

// A complete response.
struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // extra, e.g. Retry-After, Allow
};

HttpReply json_reply(int status, std::string body);
HttpReply error_reply(const ApiError& e);

const char* reason_phrase(int status);

// Status line and headers, ending with the blank line. body_length < 0: a streamed body
// (chunked when `chunked`, else delimited by closing the connection).
std::string response_head(int status, const std::string& content_type, long long body_length, bool chunked,
                          bool keep_alive, const Headers& extra);

}  // namespace flashlm::server
