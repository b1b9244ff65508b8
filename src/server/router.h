// Routes a request to its handler: 404 for unknown paths, 405 (with Allow) for a known
// path and another method, 401 without the API key where one is set, 503 while the
// model loads or the server drains.
#pragma once

#include <memory>

#include "server/responder.h"
#include "server/server_context.h"

namespace flashlm::server {

void route(ServerContext& ctx, const HttpRequest& req, const std::shared_ptr<Responder>& res);

// Handlers that answer at once (handlers.cpp).
HttpReply handle_health(const ServerContext& ctx);
HttpReply handle_metrics(const ServerContext& ctx);
HttpReply handle_models(const ServerContext& ctx);
HttpReply handle_tokenize(const ServerContext& ctx, const HttpRequest& req);
HttpReply handle_detokenize(const ServerContext& ctx, const HttpRequest& req);
HttpReply handle_tokenizer_info(const ServerContext& ctx);
HttpReply handle_chat_page();
// POST /v1/embeddings: answered later, from the embedding service (handlers.cpp).
void handle_embeddings(ServerContext& ctx, const HttpRequest& req, const std::shared_ptr<Responder>& res);

}  // namespace flashlm::server
