// The reply of an API that answers one choice as one object or as a stream of typed events
// (OpenAI's Responses API, Anthropic's Messages API): the completion job (completion.cpp)
// generates, and an ItemReply writes what it generated in that API's shapes. Each
// implementation is pure formatting plus its own state (ids, event sequence numbers).
#pragma once

#include <cstdint>
#include <string>

#include "engine/scheduler.h"
#include "server/api_error.h"
#include "server/http_message.h"
#include "server/response.h"
#include "server/tool_calls.h"

namespace flashlm::server {

class ItemReply {
 public:
  virtual ~ItemReply() = default;

  // Streaming: the events before any text. `buffered`: the reply is parsed first (tools),
  // so its text arrives only in close().
  virtual std::string open(bool buffered, int64_t n_prompt) = 0;
  // Streaming, not buffered: events for new text.
  virtual std::string delta(const std::string& text) = 0;
  // Streaming: the events after the last delta. The reply is the whole generation (its
  // text again when it was streamed as deltas).
  virtual std::string close(const ToolOutput& reply, bool buffered, FinishReason finish, const Usage& usage) = 0;
  // Not streaming: the whole response body.
  virtual std::string body(const ToolOutput& reply, FinishReason finish, const Usage& usage) = 0;
  // An error in the middle of a stream, as an event; before the reply, as a response.
  virtual std::string error_event(const ApiError& e) = 0;
  virtual HttpReply error(const ApiError& e) const { return error_reply(e); }
};

}  // namespace flashlm::server
