#include "server/cors.h"

namespace flashlm::server {

std::string cors_allow_origin(const std::vector<std::string>& allowed, std::string_view origin) {
  if (origin.empty()) return {};
  for (const std::string& a : allowed) {
    if (a == "*" || a == origin) return std::string(origin);
  }
  return {};
}

HttpReply options_reply(const std::string& allow_methods, bool preflight_allowed, std::string_view request_headers) {
  HttpReply r;
  r.status = 204;
  r.content_type.clear();
  r.headers.push_back({"Allow", allow_methods + ", OPTIONS"});
  if (preflight_allowed) {
    r.headers.push_back({"Access-Control-Allow-Methods", allow_methods + ", OPTIONS"});
    // The SDKs send their own x-stainless-* headers besides these; echo what was asked.
    r.headers.push_back({"Access-Control-Allow-Headers",
                         request_headers.empty() ? std::string("Authorization, Content-Type")
                                                 : std::string(request_headers)});
    r.headers.push_back({"Access-Control-Max-Age", "600"});
  }
  return r;
}

}  // namespace flashlm::server
