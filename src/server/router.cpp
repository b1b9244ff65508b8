#include "server/router.h"

#include <array>
#include <string_view>

#include "server/cache_api.h"
#include "server/cors.h"
#include "server/completion.h"
#include "server/response.h"

namespace flashlm::server {
namespace {

enum class Route {
  kPage, kHealth, kMetrics, kModels, kChat, kCompletions, kResponses, kMessages, kTokenize, kDetokenize, kTokenizerInfo, kCacheWarm, kCacheUnpin, kCache, kEmbeddings
};

struct RouteEntry {
  std::string_view path;
  std::string_view method;
  Route route;
  bool is_public;  // reachable without the API key
  bool needs_model;
};

constexpr std::array kRoutes = {
    RouteEntry{"/", "GET", Route::kPage, true, false},
    RouteEntry{"/index.html", "GET", Route::kPage, true, false},
    RouteEntry{"/health", "GET", Route::kHealth, true, false},
    RouteEntry{"/v1/health", "GET", Route::kHealth, true, false},
    RouteEntry{"/metrics", "GET", Route::kMetrics, false, false},
    RouteEntry{"/v1/models", "GET", Route::kModels, false, true},
    RouteEntry{"/models", "GET", Route::kModels, false, true},
    RouteEntry{"/v1/chat/completions", "POST", Route::kChat, false, true},
    RouteEntry{"/chat/completions", "POST", Route::kChat, false, true},
    RouteEntry{"/v1/completions", "POST", Route::kCompletions, false, true},
    RouteEntry{"/completions", "POST", Route::kCompletions, false, true},
    RouteEntry{"/v1/responses", "POST", Route::kResponses, false, true},
    RouteEntry{"/responses", "POST", Route::kResponses, false, true},
    RouteEntry{"/v1/messages", "POST", Route::kMessages, false, true},
    RouteEntry{"/v1/embeddings", "POST", Route::kEmbeddings, false, true},
    RouteEntry{"/embeddings", "POST", Route::kEmbeddings, false, true},
    RouteEntry{"/tokenize", "POST", Route::kTokenize, false, true},
    RouteEntry{"/detokenize", "POST", Route::kDetokenize, false, true},
    RouteEntry{"/tokenizer_info", "GET", Route::kTokenizerInfo, false, true},
    RouteEntry{"/v1/cache/warm", "POST", Route::kCacheWarm, false, true},
    RouteEntry{"/v1/cache/unpin", "POST", Route::kCacheUnpin, false, true},
    RouteEntry{"/v1/cache", "GET", Route::kCache, false, true},
};

// Compares in time independent of where the strings first differ.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

std::optional<ApiError> check_key(const ServerContext& ctx, const HttpRequest& req) {
  if (ctx.api_key.empty()) return std::nullopt;
  constexpr std::string_view kBearer = "Bearer ";
  std::string_view auth = req.authorization;
  if (auth.empty() && !req.x_api_key.empty()) {
    if (same_secret(req.x_api_key, ctx.api_key)) return std::nullopt;
    return ApiError::of(401, "invalid_request_error", "Incorrect API key provided.", "invalid_api_key");
  }
  if (auth.empty()) {
    return ApiError::of(401, "invalid_request_error",
                        "You didn't provide an API key. Provide it in the Authorization header (Authorization: Bearer "
                        "YOUR_KEY).",
                        "missing_api_key");
  }
  if (auth.substr(0, kBearer.size()) != kBearer || !same_secret(auth.substr(kBearer.size()), ctx.api_key)) {
    return ApiError::of(401, "invalid_request_error", "Incorrect API key provided.", "invalid_api_key");
  }
  return std::nullopt;
}

}  // namespace

void route(ServerContext& ctx, const HttpRequest& req, const std::shared_ptr<Responder>& res) {
  // GET /v1/models/{id}: the one model, by the id /v1/models lists.
  constexpr std::string_view kModelPrefix = "/v1/models/";
  if (req.path.size() > kModelPrefix.size() && req.path.compare(0, kModelPrefix.size(), kModelPrefix) == 0 &&
      req.method == "GET") {
    if (std::optional<ApiError> e = check_key(ctx, req)) {
      HttpReply r = error_reply(*e);
      r.headers.push_back({"WWW-Authenticate", "Bearer"});
      res->reply(std::move(r));
      return;
    }
    if (ctx.state != ServerState::kReady) {
      res->reply(error_reply(ApiError::of(503, "server_error", "The model is not loaded.", "model_loading")));
      return;
    }
    const std::string id = req.path.substr(kModelPrefix.size());
    if (ctx.embeddings != nullptr && id == ctx.embeddings->model_id()) {
      res->reply(json_reply(200, model_body(id, ctx.created)));
      return;
    }
    if (id != ctx.backend->model_id()) {
      res->reply(error_reply(ApiError::of(404, "invalid_request_error",
                                          "The model '" + id + "' does not exist; this server has '" +
                                              ctx.backend->model_id() + "'.",
                                          "model_not_found")));
      return;
    }
    res->reply(json_reply(200, model_body(id, ctx.created)));
    return;
  }
  const RouteEntry* match = nullptr;
  std::string allow;
  for (const RouteEntry& e : kRoutes) {
    if (e.path != req.path) continue;
    if (e.method == req.method) {
      match = &e;
      break;
    }
    if (!allow.empty()) allow += ", ";
    allow += e.method;
  }
  if (match == nullptr && req.method == "OPTIONS" && !allow.empty()) {
    // A CORS preflight (or a plain OPTIONS): answered without the API key, which
    // browsers never send on a preflight.
    const bool preflight = !cors_allow_origin(ctx.cors_origins, req.origin).empty();
    res->reply(options_reply(allow, preflight, req.cors_request_headers));
    return;
  }
  if (match == nullptr) {
    if (!allow.empty()) {
      HttpReply r = error_reply(
          ApiError::of(405, "invalid_request_error",
                       "Method " + req.method + " is not allowed for " + req.path + " (allowed: " + allow + ").",
                       "method_not_allowed"));
      r.headers.push_back({"Allow", allow});
      res->reply(std::move(r));
    } else {
      res->reply(error_reply(ApiError::of(404, "invalid_request_error",
                                          "Unknown request URL: " + req.method + " " + req.path + ".", "unknown_url")));
    }
    return;
  }
  if (!match->is_public) {
    if (std::optional<ApiError> e = check_key(ctx, req)) {
      HttpReply r = error_reply(*e);
      r.headers.push_back({"WWW-Authenticate", "Bearer"});
      res->reply(std::move(r));
      return;
    }
  }
  if (match->needs_model && ctx.state != ServerState::kReady) {
    const bool loading = ctx.state == ServerState::kLoading;
    HttpReply r = error_reply(ApiError::of(
        503, "server_error", loading ? "The model is loading. Retry shortly." : "The server is shutting down.",
        loading ? "model_loading" : "shutting_down"));
    if (loading) r.headers.push_back({"Retry-After", "1"});
    res->reply(std::move(r));
    return;
  }
  switch (match->route) {
    case Route::kPage:
      res->reply(handle_chat_page());
      return;
    case Route::kHealth:
      res->reply(handle_health(ctx));
      return;
    case Route::kMetrics:
      res->reply(handle_metrics(ctx));
      return;
    case Route::kModels:
      res->reply(handle_models(ctx));
      return;
    case Route::kChat:
      handle_completion(ctx, Endpoint::kChat, req, res);
      return;
    case Route::kCompletions:
      handle_completion(ctx, Endpoint::kCompletion, req, res);
      return;
    case Route::kResponses:
      handle_responses(ctx, req, res);
      return;
    case Route::kMessages:
      handle_messages(ctx, req, res);
      return;
    case Route::kCacheWarm:
      handle_cache_warm(ctx, req, res);
      return;
    case Route::kCacheUnpin:
      handle_cache_unpin(ctx, req, res);
      return;
    case Route::kCache:
      res->reply(handle_cache_status(ctx));
      return;
    case Route::kEmbeddings:
      handle_embeddings(ctx, req, res);
      return;
    case Route::kTokenizerInfo:
      res->reply(handle_tokenizer_info(ctx));
      return;
    case Route::kTokenize:
    case Route::kDetokenize:
      // Off the I/O thread: tokenizing megabytes takes seconds.
      ctx.offload([&ctx, req, res, route = match->route] {
        auto reply = std::make_shared<HttpReply>(route == Route::kTokenize ? handle_tokenize(ctx, req)
                                                                           : handle_detokenize(ctx, req));
        ctx.post([res, reply] { res->reply(std::move(*reply)); });
      });
      return;
  }
}

}  // namespace flashlm::server
