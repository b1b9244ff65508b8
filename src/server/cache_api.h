// The prefix cache's HTTP endpoints: POST /v1/cache/warm, POST /v1/cache/unpin,
// GET /v1/cache (cache_api.cpp says what each does).
#pragma once

#include <memory>

#include "server/http_message.h"
#include "server/responder.h"
#include "server/response.h"
#include "server/server_context.h"

namespace flashlm::server {

void handle_cache_warm(ServerContext& ctx, const HttpRequest& req, const std::shared_ptr<Responder>& res);
void handle_cache_unpin(ServerContext& ctx, const HttpRequest& req, const std::shared_ptr<Responder>& res);
HttpReply handle_cache_status(const ServerContext& ctx);
ojson cache_status_json(const CacheStats& s);

}  // namespace flashlm::server
