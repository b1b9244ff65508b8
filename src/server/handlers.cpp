// The handlers that answer at once: health, metrics, models, tokenize, detokenize,
// tokenizer_info, page; and embeddings, which hands the work to the embedding service. /tokenize and /tokenizer_info also speak vLLM's dialect ("prompt",
// "add_special_tokens"), which lm-evaluation-harness's remote tokenizer uses.
#include "server/chat_page.h"
#include "server/request.h"
#include "server/response.h"
#include "server/router.h"

namespace flashlm::server {

HttpReply handle_health(const ServerContext& ctx) {
  switch (ctx.state) {
    case ServerState::kReady:
      return json_reply(200, R"({"status":"ok"})");
    case ServerState::kLoading:
      return json_reply(503, R"({"status":"loading"})");
    default:
      return json_reply(503, R"({"status":"shutting down"})");
  }
}

HttpReply handle_metrics(const ServerContext& ctx) {
  HttpReply r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  if (ctx.backend != nullptr) {
    const SchedulerStats s = ctx.backend->stats();
    const CacheStats c = ctx.backend->cache_stats();
    r.body = ctx.metrics.render(&s, ctx.state == ServerState::kReady, &c);
  } else {
    r.body = ctx.metrics.render(nullptr, false);
  }
  return r;
}

HttpReply handle_models(const ServerContext& ctx) {
  std::vector<std::string> ids = {ctx.backend->model_id()};
  if (ctx.embeddings != nullptr) ids.push_back(ctx.embeddings->model_id());
  return json_reply(200, models_body(ids, ctx.created));
}

void handle_embeddings(ServerContext& ctx, const HttpRequest& req, const std::shared_ptr<Responder>& res) {
  if (ctx.embeddings == nullptr) {
    res->reply(error_reply(ApiError::invalid(
        "This server has no embedding model: start it with --embedding-model DIR (a BERT-style Hugging Face model "
        "directory, e.g. all-MiniLM-L6-v2); '" + ctx.backend->model_id() + "' generates text.",
        "model", "model_not_supported")));
    return;
  }
  // Parsed on the preparation thread, computed on the embedding service's, answered here.
  // `res` is moved from hop to hop, so its last reference always dies on the I/O thread
  // (a session must not be destroyed on another thread).
  ctx.offload([&ctx, req, res]() mutable {
    nlohmann::json body;
    EmbeddingRequest er;
    std::optional<ApiError> err = parse_json(req.body, &body);
    if (!err) err = parse_embedding_request(body, &er);
    if (err) {
      ctx.post([res = std::move(res), e = *err] { res->reply(error_reply(e)); });
      return;
    }
    EmbeddingService* svc = ctx.embeddings;
    // Clients send any name (LangChain's default is OpenAI's model), as for chat; but the
    // chat model's own name asks for something this server does not do.
    if (er.model == ctx.backend->model_id() && er.model != svc->model_id()) {
      ctx.post([res = std::move(res), id = er.model, emb = svc->model_id()] {
        res->reply(error_reply(ApiError::invalid("Invalid 'model': '" + id + "' generates text; this server embeds with '" +
                                                     emb + "'.",
                                                 "model", "model_not_supported")));
      });
      return;
    }
    const bool base64 = er.base64;
    svc->submit(std::move(er), [&ctx, res = std::move(res), base64, svc](EmbeddingReply r) mutable {
      auto reply = std::make_shared<HttpReply>(r.error ? error_reply(*r.error)
                                                       : json_reply(200, embeddings_body(base64, r, svc->model_id())));
      ctx.post([res = std::move(res), reply] { res->reply(std::move(*reply)); });
    });
  });
}

HttpReply handle_tokenize(const ServerContext& ctx, const HttpRequest& req) {
  nlohmann::json body;
  TokenizeRequest t;
  std::optional<ApiError> err = parse_json(req.body, &body);
  if (!err) err = parse_tokenize_request(body, &t);
  if (err) return error_reply(*err);
  const std::vector<int32_t> ids = ctx.backend->tokenize(t.content, t.add_special, t.parse_special);
  return json_reply(200, dump(ojson{{"tokens", ids}}));
}

HttpReply handle_detokenize(const ServerContext& ctx, const HttpRequest& req) {
  nlohmann::json body;
  DetokenizeRequest d;
  std::optional<ApiError> err = parse_json(req.body, &body);
  if (!err) err = parse_detokenize_request(body, &d);
  if (err) return error_reply(*err);
  for (size_t i = 0; i < d.tokens.size(); ++i) {
    if (d.tokens[i] >= ctx.backend->n_vocab()) {
      return error_reply(ApiError::invalid("Invalid 'tokens[" + std::to_string(i) + "]': token id " +
                                               std::to_string(d.tokens[i]) + " is not below the vocabulary size " +
                                               std::to_string(ctx.backend->n_vocab()) + ".",
                                           "tokens", "invalid_value"));
    }
  }
  // Bytes that are not UTF-8 (a split multi-byte character) come back as U+FFFD.
  return json_reply(200, dump(ojson{{"content", ctx.backend->detokenize(d.tokens)}}));
}

HttpReply handle_tokenizer_info(const ServerContext& ctx) {
  const std::string eos = ctx.backend->eos_text(), bos = ctx.backend->bos_text();
  auto text_or_null = [](const std::string& s) { return s.empty() ? ojson() : ojson(s); };
  return json_reply(200, dump(ojson{{"eos_token", text_or_null(eos)},
                                    {"bos_token", text_or_null(bos)},
                                    {"model_max_length", ctx.backend->n_ctx()}}));
}

HttpReply handle_chat_page() {
  HttpReply r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::string(chat_page_html());
  return r;
}

}  // namespace flashlm::server
