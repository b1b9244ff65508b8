// Server-sent events as OpenAI streams them (`data: {json}\n\n`, then `data: [DONE]\n\n`),
// carried in HTTP/1.1 chunked transfer coding.
#pragma once

#include <string>
#include <string_view>

namespace flashlm::server {

// One event. `data` must hold no newline (compact JSON never does).
std::string sse_event(std::string_view data);
std::string sse_done();
// A typed event (`event: TYPE`, then `data: ...`), as the Responses and Messages APIs send.
std::string sse_typed_event(std::string_view type, std::string_view data);

// Chunked transfer coding: one chunk (hex size, CRLF, data, CRLF; empty data gives
// nothing, since a zero-size chunk would end the body) and the terminating chunk.
std::string http_chunk(std::string_view data);
std::string http_last_chunk();

}  // namespace flashlm::server
