// Cross-origin requests from browser apps (CORS). Off unless `--cors-origin` lists
// origins: with it on, any web page the user opens on an allowed origin can drive the
// model (and read what it writes) through the user's browser, which on a loopback server
// without --api-key is nobody else's business; the built-in chat page is same-origin and
// needs none of it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/http_message.h"

namespace flashlm::server {

// The Access-Control-Allow-Origin value for a request's Origin header: the origin itself
// when it is listed (or "*" is), "" when the request is not cross-origin or not allowed.
std::string cors_allow_origin(const std::vector<std::string>& allowed, std::string_view origin);

// The answer to OPTIONS on a known path: 204 with Allow, and for an allowed CORS
// preflight the methods and headers it may use (cached by the browser for 10 minutes).
HttpReply options_reply(const std::string& allow_methods, bool preflight_allowed, std::string_view request_headers);

}  // namespace flashlm::server
