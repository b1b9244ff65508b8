// The prefix cache over HTTP:
//   POST /v1/cache/warm   {"messages": [...]} or {"prompt": "..." | [ids]}: computes the
//                         prompt's KV once and pins its full blocks, so later requests that
//                         start the same way skip that prefill. Replies when it is done.
//   POST /v1/cache/unpin  the same body: the pinned blocks become ordinary cached blocks
//                         (evictable when memory runs short).
//   GET  /v1/cache        blocks cached and pinned, hit/miss tokens, hit rate, bytes.
// Request bodies are parsed by the completion parser, so the same fields, limits and
// errors apply (messages go through the model's chat template as for a chat request).
#include "server/cache_api.h"

#include "server/completion.h"
#include "server/response.h"

namespace flashlm::server {
namespace {

Endpoint endpoint_of(const nlohmann::json& body) {
  return body.is_object() && body.contains("messages") ? Endpoint::kChat : Endpoint::kCompletion;
}

// Parses and tokenizes on the preparation thread, then runs `then(tokens)` on the I/O thread.
template <typename Then>
void with_prompt_tokens(ServerContext& ctx, const HttpRequest& http, const std::shared_ptr<Responder>& res,
                        Then then) {
  nlohmann::json body;
  CompletionRequest req;
  std::optional<ApiError> err = parse_json(http.body, &body);
  if (!err) err = parse_completion_request(body, endpoint_of(body), &req, http.body);
  if (err) {
    res->reply(error_reply(*err));
    return;
  }
  ctx.offload([&ctx, req = std::move(req), res, then]() mutable {
    auto tokens = std::make_shared<std::vector<int32_t>>();
    std::optional<ApiError> perr = prompt_tokens(*ctx.backend, req, tokens.get());
    ctx.post([&ctx, tokens, perr, res, then, endpoint = req.endpoint]() mutable {
      if (perr) {
        res->reply(error_reply(*perr));
        return;
      }
      then(ctx, endpoint, std::move(*tokens), res);
    });
  });
}

}  // namespace

void handle_cache_warm(ServerContext& ctx, const HttpRequest& http, const std::shared_ptr<Responder>& res) {
  with_prompt_tokens(ctx, http, res,
                     [](ServerContext& c, Endpoint endpoint, std::vector<int32_t> tokens,
                        const std::shared_ptr<Responder>& r) {
                       const auto n_prompt = static_cast<int64_t>(tokens.size());
                       SubmitResult sr = c.backend->warm(std::move(tokens), [&c, r, n_prompt](const StreamEvent& ev) {
                         if (ev.finish == FinishReason::kNone) return;
                         // Scheduler thread: the reply goes back through the I/O thread.
                         c.post([r, ev, n_prompt] {
                           if (ev.finish != FinishReason::kStop && ev.finish != FinishReason::kLength) {
                             r->reply(error_reply(ApiError::of(
                                 503, "server_error",
                                 "The prefix was not warmed (" + std::string(finish_reason_name(ev.finish)) +
                                     (ev.error.empty() ? "" : ": " + ev.error) + ").",
                                 "warm_failed")));
                             return;
                           }
                           r->reply(json_reply(200, dump(ojson{{"object", "cache.warm"},
                                                               {"prompt_tokens", n_prompt},
                                                               {"cached_tokens", ev.n_cached}})));
                         });
                       });
                       if (sr.error != SubmitError::kNone) {
                         HttpReply reply = error_reply(submit_error(sr, endpoint));
                         if (sr.error == SubmitError::kQueueFull) reply.headers.push_back({"Retry-After", "1"});
                         r->reply(std::move(reply));
                       }
                     });
}

void handle_cache_unpin(ServerContext& ctx, const HttpRequest& http, const std::shared_ptr<Responder>& res) {
  with_prompt_tokens(ctx, http, res,
                     [](ServerContext& c, Endpoint, std::vector<int32_t> tokens, const std::shared_ptr<Responder>& r) {
                       const auto n = static_cast<int64_t>(tokens.size());
                       c.backend->unpin(std::move(tokens));
                       r->reply(json_reply(200, dump(ojson{{"object", "cache.unpin"}, {"prompt_tokens", n}})));
                     });
}

ojson cache_status_json(const CacheStats& s) {
  const int64_t looked_up = s.hit_tokens + s.miss_tokens;
  ojson groups = ojson::array();
  for (const KvGroupStats& g : s.groups) {
    groups.push_back(ojson{{"window", g.window},
                           {"layers", g.n_layers},
                           {"blocks", g.n_blocks},
                           {"blocks_used", g.used},
                           {"blocks_cached", g.cached},
                           {"blocks_free", g.free},
                           {"block_bytes", g.block_bytes}});
  }
  return ojson{{"object", "cache"},
               {"memory", ojson{{"blocks_cached", s.blocks_cached},
                                {"blocks_pinned", s.blocks_pinned},
                                {"bytes_used", s.bytes_used},
                                {"bytes_cached", s.bytes_cached},
                                {"bytes_total", s.bytes_total},
                                {"groups", groups}}},
               {"prompt_tokens_hit", s.hit_tokens},
               {"prompt_tokens_missed", s.miss_tokens},
               {"hit_rate", looked_up > 0 ? static_cast<double>(s.hit_tokens) / static_cast<double>(looked_up) : 0.0},
               {"recompute_hit_tokens", s.recompute_hit_tokens},
               {"disk", s.store_enabled ? ojson{{"blocks", s.store.blocks},
                                                {"bytes", s.store.bytes},
                                                {"blocks_loaded", s.store_blocks_loaded},
                                                {"blocks_rejected", s.store_blocks_rejected},
                                                {"pending_writes", s.store.pending},
                                                {"writes", s.store.writes},
                                                {"write_errors", s.store.write_errors},
                                                {"dropped", s.store.dropped},
                                                {"corrupt", s.store.corrupt},
                                                {"evicted", s.store.evicted}}
                                        : ojson(nullptr)}};
}

HttpReply handle_cache_status(const ServerContext& ctx) {
  return json_reply(200, dump(cache_status_json(ctx.backend->cache_stats())));
}

}  // namespace flashlm::server
