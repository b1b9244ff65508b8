#include "server/completion.h"

#include <chrono>
#include <ctime>

#include "grammar/grammar.h"
#include "server/response.h"
#include "server/messages_api.h"
#include "server/responses_api.h"
#include "server/sse.h"

namespace flashlm::server {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Choice {
  uint64_t id = 0;
  bool live = false;              // submitted, final event not seen yet
  std::string text;               // non-streamed: everything so far
  std::vector<TokenInfo> tokens;  // logprobs: everything (non-streamed) or not yet sent (streamed)
  FinishReason finish = FinishReason::kNone;
  int64_t n_prompt = 0, n_generated = 0, n_cached = 0;
  bool got_token = false;
  Clock::time_point last_token;
  int64_t text_offset = 0;  // completions logprobs: bytes of text streamed so far (echo included)
  bool echoed = false;      // echo: the prompt's text (and logprobs) taken in
  ojson prompt_logprobs;    // echo with logprobs, non-streamed: the prompt's entries
};

const char* prompt_param(Endpoint e) { return e == Endpoint::kChat ? "messages" : "prompt"; }

// One completion request: n scheduler requests feeding one HTTP response. Owned by the
// Responder's abort callback (kept until the response ends); scheduler events reach it
// through weak pointers posted to the I/O thread, so events after the end are dropped.
class CompletionJob : public std::enable_shared_from_this<CompletionJob> {
 public:
  // items: how /v1/responses and /v1/messages write the reply (the request is their chat
  // form); null for chat and text completions.
  CompletionJob(ServerContext& ctx, std::shared_ptr<Responder> res, CompletionRequest req, std::vector<int32_t> prompt,
                std::shared_ptr<ItemReply> items)
      : ctx_(ctx),
        backend_(*ctx.backend),
        res_(std::move(res)),
        req_(std::move(req)),
        prompt_(std::move(prompt)),
        choices_(static_cast<size_t>(req_.n)),
        items_(std::move(items)) {
    meta_.endpoint = req_.endpoint;
    meta_.id = make_response_id(req_.endpoint);
    meta_.fingerprint = ctx.fingerprint;
    meta_.created = static_cast<int64_t>(std::time(nullptr));
    meta_.model = backend_.model_id();
    piece_ = [this](int32_t t) { return backend_.token_piece(t); };
    tools_ = req_.endpoint == Endpoint::kChat && req_.tools.active();
    tool_format_ = backend_.tool_format();
    // The prompt as sent; token ids as their text (not necessarily valid UTF-8: dump()
    // replaces what is not).
    if (req_.echo) echo_text_ = req_.prompt_is_tokens ? backend_.detokenize(prompt_) : req_.prompt_text;
  }

  void start() {
    t_submit_ = Clock::now();
    std::weak_ptr<CompletionJob> weak = weak_from_this();
    for (size_t i = 0; i < choices_.size(); ++i) {
      RequestOptions ro;
      ro.prompt = prompt_;
      ro.max_tokens = req_.max_tokens;
      ro.sampling = req_.sampling;
      if (req_.seed_given) ro.sampling.seed = req_.sampling.seed + i;  // n choices must differ
      ro.stop = req_.stop;
      ro.ignore_eos = req_.ignore_eos;
      ro.grammar = req_.grammar;
      ro.top_logprobs = req_.top_logprobs;
      // Echo with logprobs scores the prompt; echo alone just repeats its text.
      ro.prompt_logprobs = req_.echo ? req_.top_logprobs : -1;
      auto post = ctx_.post;
      EventFn fn = [weak, i, post](const StreamEvent& ev) {
        const Clock::time_point t = Clock::now();  // stamped on the scheduler thread
        post([weak, i, ev, t] {
          if (auto self = weak.lock()) self->on_event(i, ev, t);
        });
      };
      SubmitResult r = backend_.submit(std::move(ro), std::move(fn));
      if (r.error != SubmitError::kNone) {
        cancel_live();
        done_ = true;
        const ApiError e = submit_error(r, req_.endpoint);
        HttpReply reply = items_ ? items_->error(e) : error_reply(e);
        if (r.error == SubmitError::kQueueFull) reply.headers.push_back({"Retry-After", "1"});
        res_->reply(std::move(reply));
        return;
      }
      choices_[i].id = r.id;
      choices_[i].live = true;
    }
    // The callback owns the job until the response ends.
    res_->on_abort([self = shared_from_this()] { self->abort(); });
    if (req_.stream) {
      res_->start_stream(200, "text/event-stream; charset=utf-8",
                         {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}});
      if (items_) {
        write(items_->open(tools_, static_cast<int64_t>(prompt_.size())));
      } else if (req_.endpoint == Endpoint::kChat) {
        for (size_t i = 0; i < choices_.size() && !done_; ++i) {
          ChunkChoice c;
          c.index = static_cast<int>(i);
          c.first = true;
          send(c);
        }
      }
    }
  }

 private:
  bool logprobs() const { return req_.top_logprobs >= 0; }

  void on_event(size_t i, const StreamEvent& ev, Clock::time_point t) {
    Choice& c = choices_[i];
    if (done_ || !c.live) return;
    c.n_prompt = ev.n_prompt;
    c.n_generated = ev.n_generated;
    c.n_cached = ev.n_cached;
    observe_latency(c, ev, t);
    if (req_.echo && !c.echoed) echo_prompt(i, ev);
    if (done_) return;
    if (logprobs()) c.tokens.insert(c.tokens.end(), ev.tokens.begin(), ev.tokens.end());
    // With tools a reply is parsed before it is sent: its text is kept, even when streaming.
    if (req_.stream && !tools_ && items_) {
      c.text += ev.text;  // the closing events repeat it whole
      if (!ev.text.empty()) write(items_->delta(ev.text));
    } else if (req_.stream && !tools_) {
      if (!ev.text.empty()) send_text(i, ev.text, "");
    } else {
      c.text += ev.text;
    }
    if (ev.finish == FinishReason::kNone) return;
    c.live = false;
    c.finish = ev.finish;
    if (ev.finish == FinishReason::kError) {
      fail(ApiError::of(500, "server_error", "generation failed: " + ev.error));
      return;
    }
    if (ev.finish == FinishReason::kCancelled) {  // not by us: the scheduler is stopping
      fail(ApiError::of(503, "server_error", "The request was cancelled: the server is shutting down.",
                        "shutting_down"));
      return;
    }
    ctx_.metrics.observe_request(seconds(t - t_submit_));
    if (items_) {
      // One choice: complete() answers.
    } else if (req_.stream && tools_) {
      send_tool_reply(i);
    } else if (req_.stream) {
      send_text(i, "", finish_reason_text(ev.finish));
    }
    for (const Choice& o : choices_) {
      if (o.live) return;
    }
    complete();
  }

  void observe_latency(Choice& c, const StreamEvent& ev, Clock::time_point t) {
    const size_t k = ev.tokens.size();
    if (k == 0) return;
    if (!c.got_token) {
      c.got_token = true;
      ctx_.metrics.observe_ttft(ev.ttft_ms >= 0.0 ? ev.ttft_ms / 1000.0 : seconds(t - t_submit_));
    } else {
      const double per_token = seconds(t - c.last_token) / static_cast<double>(k);
      for (size_t j = 0; j < k; ++j) ctx_.metrics.observe_inter_token(per_token);
    }
    c.last_token = t;
  }

  // The echoed prompt opens the choice's text: its first chunk when streaming (with the
  // prompt's logprobs), else the start of its text. The scheduler sends the prompt's
  // scored tokens with a request's first event, which is when this runs.
  void echo_prompt(size_t i, const StreamEvent& ev) {
    Choice& c = choices_[i];
    c.echoed = true;
    ojson lp;
    if (logprobs()) lp = echo_text_logprobs(prompt_.front(), ev.prompt_tokens, piece_);
    if (req_.stream) {
      ChunkChoice chunk;
      chunk.index = static_cast<int>(i);
      chunk.text = echo_text_;
      chunk.logprobs = std::move(lp);
      send(chunk);
    } else {
      c.text = echo_text_;
      c.prompt_logprobs = std::move(lp);
    }
    c.text_offset = static_cast<int64_t>(echo_text_.size());
  }

  // A streamed chunk with new text and/or the finish reason, carrying the logprobs of the
  // tokens since the last chunk.
  void send_text(size_t i, const std::string& text, const std::string& finish) {
    Choice& c = choices_[i];
    ChunkChoice chunk;
    chunk.index = static_cast<int>(i);
    chunk.text = text;
    chunk.finish_reason = finish;
    if (logprobs() && (!c.tokens.empty() || finish.empty())) {
      if (req_.endpoint == Endpoint::kChat) {
        chunk.logprobs = {{"content", chat_logprobs_content(c.tokens, piece_)}, {"refusal", nullptr}};
      } else {
        chunk.logprobs = text_logprobs(c.tokens, piece_, c.text_offset);
      }
      c.tokens.clear();
    }
    c.text_offset += static_cast<int64_t>(text.size());
    send(chunk);
  }

  // A streamed reply with tools, once it is whole: its content, then each call as OpenAI
  // streams one (id and name with empty arguments, then the arguments), then the finish.
  void send_tool_reply(size_t i) {
    Choice& c = choices_[i];
    const ToolOutput out = parse_tool_output(c.text, req_.tools, tool_format_);
    if (out.content || logprobs()) send_text(i, out.content.value_or(""), "");
    const ojson calls = tool_calls_json(out.calls);
    for (size_t k = 0; k < calls.size() && !done_; ++k) {
      ChunkChoice head;
      head.index = static_cast<int>(i);
      head.tool_calls = ojson::array({{{"index", k},
                                       {"id", calls[k]["id"]},
                                       {"type", "function"},
                                       {"function", {{"name", calls[k]["function"]["name"]}, {"arguments", ""}}}}});
      send(head);
      ChunkChoice args;
      args.index = static_cast<int>(i);
      args.tool_calls =
          ojson::array({{{"index", k}, {"function", {{"arguments", calls[k]["function"]["arguments"]}}}}});
      send(args);
    }
    if (!done_) send_text(i, "", out.calls.empty() ? finish_reason_text(c.finish) : "tool_calls");
  }

  void write(const std::string& events) {
    if (!res_->write(events)) abort();
  }

  // /v1/responses, /v1/messages: the one choice's reply, parsed for calls with tools.
  void finish_items() {
    const Choice& c = choices_[0];
    ToolOutput reply;
    if (tools_) {
      reply = parse_tool_output(c.text, req_.tools, tool_format_);
    } else {
      reply.content = c.text;
    }
    if (!req_.stream) {
      res_->reply(json_reply(200, items_->body(reply, c.finish, usage())));
      return;
    }
    if (res_->write(items_->close(reply, tools_, c.finish, usage()))) res_->end_stream();
  }

  void send(const ChunkChoice& chunk) {
    if (!res_->write(sse_event(chunk_json(meta_, chunk, req_.include_usage)))) abort();
  }

  Usage usage() const {
    Usage u;
    u.prompt_tokens = choices_[0].n_prompt > 0 ? choices_[0].n_prompt : static_cast<int64_t>(prompt_.size());
    u.cached_tokens = choices_[0].n_cached;
    for (const Choice& c : choices_) u.completion_tokens += c.n_generated;
    return u;
  }

  void complete() {
    done_ = true;
    if (items_) {
      finish_items();
      return;
    }
    if (req_.stream) {
      if (req_.include_usage && !res_->write(sse_event(usage_chunk_json(meta_, usage())))) return;
      if (!res_->write(sse_done())) return;
      res_->end_stream();
      return;
    }
    std::vector<ChoiceResult> results;
    for (size_t i = 0; i < choices_.size(); ++i) {
      ChoiceResult r;
      r.index = static_cast<int>(i);
      r.text = std::move(choices_[i].text);
      r.finish_reason = finish_reason_text(choices_[i].finish);
      if (tools_) {
        ToolOutput out = parse_tool_output(r.text, req_.tools, tool_format_);
        if (!out.calls.empty()) {
          r.tool_calls = tool_calls_json(out.calls);
          r.finish_reason = "tool_calls";
        }
        r.content_null = !out.content.has_value();
        r.text = out.content.value_or("");
      }
      r.tokens = std::move(choices_[i].tokens);
      r.prompt_logprobs = std::move(choices_[i].prompt_logprobs);
      r.text_offset = choices_[i].text_offset;
      results.push_back(std::move(r));
    }
    res_->reply(json_reply(200, completion_body(meta_, results, usage(), logprobs(), piece_)));
  }

  void fail(const ApiError& e) {
    cancel_live();
    done_ = true;
    if (req_.stream) {
      // Mid-stream errors go as an event with an "error" key, which OpenAI's SDKs raise
      // (the Responses API's is an event of type "error").
      const std::string ev = items_ ? items_->error_event(e) : sse_event(error_body(e));
      if (res_->write(ev)) res_->end_stream();
    } else {
      res_->reply(items_ ? items_->error(e) : error_reply(e));
    }
  }

  // The client went away or reads too slowly: free its sequences now.
  void abort() {
    if (done_) return;
    done_ = true;
    ctx_.metrics.count_cancelled();
    cancel_live();
  }

  void cancel_live() {
    for (Choice& c : choices_) {
      if (c.live) backend_.cancel(c.id);
      c.live = false;
    }
  }

  ServerContext& ctx_;
  Backend& backend_;
  std::shared_ptr<Responder> res_;
  CompletionRequest req_;
  std::vector<int32_t> prompt_;
  std::vector<Choice> choices_;
  ResponseMeta meta_;
  PieceFn piece_;
  std::string echo_text_;
  std::shared_ptr<ItemReply> items_;
  bool tools_ = false;  // tools offered and not switched off: replies are parsed for calls
  ToolFormat tool_format_ = ToolFormat::kGeneric;
  Clock::time_point t_submit_;
  bool done_ = false;  // the response has ended (or the client is gone): ignore events
};

// The grammar a reply with tools must follow, for this model's call format; none when the
// reply is free (tool_choice auto with a template that writes its own call syntax).
std::optional<ApiError> compile_tool_grammar(const Backend& backend, CompletionRequest* req) {
  if (req->endpoint != Endpoint::kChat || !req->tools.active()) return std::nullopt;
  Result<std::string> gbnf = tool_call_gbnf(req->tools, backend.tool_format());
  if (!gbnf) return ApiError::invalid(gbnf.message(), "tools", "invalid_value");
  if (gbnf->empty()) return std::nullopt;
  Result<grammar::Grammar> g = grammar::parse_gbnf(*gbnf);
  if (!g) return ApiError::invalid("tools: " + g.message(), "tools", "invalid_value");
  req->grammar = std::make_shared<const grammar::Grammar>(std::move(g.value()));
  return std::nullopt;
}

ApiError context_error(int64_t n_prompt, int64_t n_ctx, Endpoint endpoint) {
  return ApiError::invalid("This model's maximum context length is " + std::to_string(n_ctx) +
                               " tokens. However, your prompt has " + std::to_string(n_prompt) +
                               " tokens, which leaves no room for a completion. Please shorten the prompt.",
                           prompt_param(endpoint), "context_length_exceeded");
}

}  // namespace

ApiError submit_error(const SubmitResult& r, Endpoint endpoint) {
  switch (r.error) {
    case SubmitError::kQueueFull:
      return ApiError::of(429, "rate_limit_error",
                          "The server is busy (request queue full): " + r.message + ". Retry shortly.", "queue_full");
    case SubmitError::kShuttingDown:
      return ApiError::of(503, "server_error", "The server is shutting down.", "shutting_down");
    case SubmitError::kTooLong:
      return ApiError::invalid(r.message, prompt_param(endpoint), "context_length_exceeded");
    default:
      return ApiError::invalid(r.message);
  }
}

std::optional<ApiError> prompt_tokens(const Backend& backend, const CompletionRequest& req, std::vector<int32_t>* out) {
  if (req.endpoint == Endpoint::kChat) {
    const ChatInput in = tool_chat_input(req.messages, req.tools, backend.tool_format());
    Result<std::vector<int32_t>> t = backend.chat_tokens(in.messages, in.tools);
    if (!t) return ApiError::invalid(t.message(), "messages", "invalid_messages");
    *out = std::move(t.value());
  } else if (req.prompt_is_tokens) {
    for (size_t i = 0; i < req.prompt_tokens.size(); ++i) {
      if (req.prompt_tokens[i] >= backend.n_vocab()) {
        return ApiError::invalid("Invalid 'prompt[" + std::to_string(i) + "]': token id " +
                                     std::to_string(req.prompt_tokens[i]) + " is not below the vocabulary size " +
                                     std::to_string(backend.n_vocab()) + ".",
                                 "prompt", "invalid_value");
      }
    }
    *out = req.prompt_tokens;
  } else {
    *out = backend.tokenize(req.prompt_text, /*add_special=*/true, /*parse_special=*/true);
  }
  if (out->empty()) return ApiError::invalid("The prompt is empty.", "prompt", "invalid_value");
  const auto n_prompt = static_cast<int64_t>(out->size());
  if (n_prompt >= backend.n_ctx()) return context_error(n_prompt, backend.n_ctx(), req.endpoint);
  return std::nullopt;
}

namespace {

// Template, tokenizer and tool grammar on the preparation thread, then back on the I/O
// thread to submit the job.
void prepare_and_start(ServerContext& ctx, CompletionRequest req, const std::shared_ptr<Responder>& res,
                       std::shared_ptr<ItemReply> items, const char* input_param = nullptr) {
  ctx.offload([&ctx, req = std::move(req), res, items, input_param]() mutable {
    auto prompt = std::make_shared<std::vector<int32_t>>();
    std::optional<ApiError> perr = prompt_tokens(*ctx.backend, req, prompt.get());
    if (!perr) perr = compile_tool_grammar(*ctx.backend, &req);
    if (perr && input_param != nullptr && perr->param == "messages") perr->param = input_param;
    ctx.post([&ctx, req = std::move(req), prompt, perr, res, items]() mutable {
      if (perr) {
        res->reply(items ? items->error(*perr) : error_reply(*perr));
        return;
      }
      // A huge max_tokens means "as much as fits", as llama.cpp treats it.
      const int64_t room = ctx.backend->n_ctx() - static_cast<int64_t>(prompt->size());
      if (req.max_tokens > room) req.max_tokens = room;
      auto job = std::make_shared<CompletionJob>(ctx, res, std::move(req), std::move(*prompt), items);
      job->start();
    });
  });
}

}  // namespace

void handle_completion(ServerContext& ctx, Endpoint endpoint, const HttpRequest& http,
                       const std::shared_ptr<Responder>& res) {
  nlohmann::json body;
  CompletionRequest req;
  std::optional<ApiError> err = parse_json(http.body, &body);
  if (!err) err = parse_completion_request(body, endpoint, &req, http.body);
  if (err) {
    res->reply(error_reply(*err));
    return;
  }
  prepare_and_start(ctx, std::move(req), res, nullptr);
}

void handle_responses(ServerContext& ctx, const HttpRequest& http, const std::shared_ptr<Responder>& res) {
  nlohmann::json body;
  CompletionRequest req;
  auto meta = std::make_shared<ResponsesRequest>();
  std::optional<ApiError> err = parse_json(http.body, &body);
  nlohmann::json history;
  if (!err && body.is_object()) {
    auto prev = body.find("previous_response_id");
    if (prev != body.end() && prev->is_string()) {
      std::optional<nlohmann::json> h = ctx.responses->get(prev->get<std::string>());
      if (!h) {
        ApiError e = ApiError::of(404, "invalid_request_error",
                                  "Previous response with id '" + prev->get<std::string>() +
                                      "' not found (flashlm keeps recent responses in memory only).",
                                  "previous_response_not_found");
        e.param = "previous_response_id";
        err = e;
      } else {
        history = std::move(*h);
      }
    }
  }
  if (!err) err = parse_responses_request(body, http.body, history, &req, meta.get());
  if (err) {
    res->reply(error_reply(*err));
    return;
  }
  prepare_and_start(ctx, std::move(req), res,
                    make_responses_reply(std::move(meta), ctx.responses, ctx.backend->model_id()), "input");
}

void handle_messages(ServerContext& ctx, const HttpRequest& http, const std::shared_ptr<Responder>& res) {
  nlohmann::json body;
  CompletionRequest req;
  std::optional<ApiError> err = parse_json(http.body, &body);
  if (!err) err = parse_messages_request(body, http.body, &req);
  if (err) {
    res->reply(anthropic_error_reply(*err));
    return;
  }
  prepare_and_start(ctx, std::move(req), res, make_messages_reply(ctx.backend->model_id()), "messages");
}

}  // namespace flashlm::server
