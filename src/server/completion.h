// POST /v1/chat/completions, /v1/completions, /v1/responses and /v1/messages: request -> prompt tokens -> n scheduler
// requests -> one JSON reply or an SSE stream of chunks.
#pragma once

#include <memory>

#include "server/request.h"
#include "server/responder.h"
#include "server/server_context.h"

namespace flashlm::server {

// Prompt tokens of a parsed request (chat template or tokenizer, or the ids given),
// checked against the vocabulary and the context size.
std::optional<ApiError> prompt_tokens(const Backend& backend, const CompletionRequest& req, std::vector<int32_t>* out);

// Why the scheduler refused a request, as the API error to send (429 when the queue is full).
ApiError submit_error(const SubmitResult& r, Endpoint endpoint);

void handle_completion(ServerContext& ctx, Endpoint endpoint, const HttpRequest& req,
                       const std::shared_ptr<Responder>& res);
// POST /v1/responses (server/responses_api.h): the same job, answered in the Responses API's
// shapes.
void handle_responses(ServerContext& ctx, const HttpRequest& req, const std::shared_ptr<Responder>& res);
// POST /v1/messages (server/messages_api.h): Anthropic's Messages API, likewise.
void handle_messages(ServerContext& ctx, const HttpRequest& req, const std::shared_ptr<Responder>& res);

}  // namespace flashlm::server
