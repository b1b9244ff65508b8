#include "server/sse.h"

#include <cstdio>

namespace flashlm::server {

std::string sse_event(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 8);
  out += "data: ";
  out += data;
  out += "\n\n";
  return out;
}

std::string sse_done() { return "data: [DONE]\n\n"; }

std::string sse_typed_event(std::string_view type, std::string_view data) {
  std::string out = "event: ";
  out += type;
  out += '\n';
  return out + sse_event(data);
}

std::string http_chunk(std::string_view data) {
  if (data.empty()) return {};
  char size[24];
  const int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string out;
  out.reserve(static_cast<size_t>(n) + data.size() + 2);
  out.append(size, static_cast<size_t>(n));
  out += data;
  out += "\r\n";
  return out;
}

std::string http_last_chunk() { return "0\r\n\r\n"; }

}  // namespace flashlm::server
