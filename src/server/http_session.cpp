#include "server/http_session.h"

#include <chrono>
#include <deque>
#include <optional>

// GCC 12 reports a -Wmaybe-uninitialized false positive inside Beast's parser (a
// boost::optional in basic_parser::do_field) when inlining under the sanitizers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "server/cors.h"
#include "server/router.h"
#include "server/sse.h"

namespace flashlm::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr size_t kWatchChunk = 4096;
constexpr size_t kMaxPipelined = 64u << 10;  // bytes of a next request read while answering
constexpr size_t kMaxDrain = 64u << 20;      // bytes discarded after an error reply before closing
constexpr auto kLingerTime = std::chrono::seconds(2);
}  // namespace

class HttpSession final : public Responder, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, ServerContext& ctx) : stream_(std::move(socket)), ctx_(ctx) {
    ctx_.metrics.set_connections(++ctx_.connections);
  }
  ~HttpSession() override { ctx_.metrics.set_connections(--ctx_.connections); }

  void start() { read_request(); }

  void close_when_idle() {
    if (!in_response_) close();
  }

  // Shutdown: drops the exchange in progress too (its abort callback still runs).
  void close_and_abort() {
    if (in_response_ && !response_done_) {
      abort_client();
    } else {
      close();
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  // Responder.
  void reply(HttpReply r) override {
    if (closed_ || aborted_ || response_done_) return;
    begin_response(r.status);
    response_done_ = true;
    abort_fn_ = nullptr;
    add_cors(&r.headers);
    enqueue(
        response_head(r.status, r.content_type, static_cast<long long>(r.body.size()), false, keep_alive_, r.headers) +
        r.body);
  }

  void start_stream(int status, const std::string& content_type, const Headers& extra) override {
    if (closed_ || aborted_ || response_done_) return;
    begin_response(status);
    chunked_ = version_ >= 11;
    if (!chunked_) keep_alive_ = false;  // HTTP/1.0: the body ends when the connection does
    Headers headers = extra;
    add_cors(&headers);
    enqueue(response_head(status, content_type, -1, chunked_, keep_alive_, headers));
  }

  bool write(std::string data) override {
    if (closed_ || aborted_ || response_done_) return false;
    if (out_bytes_ + data.size() > ctx_.limits.max_pending) {
      abort_client();  // a reader this slow would make us buffer without bound
      return false;
    }
    enqueue(chunked_ ? http_chunk(data) : std::move(data));
    return true;
  }

  void end_stream() override {
    if (closed_ || aborted_ || response_done_) return;
    response_done_ = true;
    abort_fn_ = nullptr;
    if (chunked_) {
      enqueue(http_last_chunk());
    } else if (!writing_) {
      next_request();
    }
  }

  void on_abort(std::function<void()> fn) override {
    if (aborted_) {
      asio::post(stream_.get_executor(), std::move(fn));
      return;
    }
    abort_fn_ = std::move(fn);
  }

 private:
  // A cross-origin request from an allowed origin may read its reply.
  void add_cors(Headers* h) const {
    if (cors_origin_.empty()) return;
    h->push_back({"Access-Control-Allow-Origin", cors_origin_});
    h->push_back({"Vary", "Origin"});
  }

  void read_request() {
    if (closed_) return;
    in_response_ = false;
    response_done_ = false;
    chunked_ = false;
    after_watch_ = After::kNothing;
    cors_origin_.clear();
    parser_.emplace();
    parser_->body_limit(ctx_.limits.max_body);
    parser_->header_limit(static_cast<uint32_t>(ctx_.limits.max_header));
    stream_.expires_after(std::chrono::milliseconds(static_cast<int64_t>(ctx_.limits.timeout_s * 1000.0)));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  // The head is in (a too-large Content-Length has already failed with body_limit).
  // Clients that sent "Expect: 100-continue" (curl, for large bodies) wait for this.
  void on_header(beast::error_code ec) {
    if (closed_) return;
    if (ec) return on_read(ec);
    auto self = shared_from_this();
    auto read_body = [self] {
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code e, size_t) { self->on_read(e); });
    };
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue), [self, read_body](beast::error_code e, size_t) {
        if (e) return self->close();
        read_body();
      });
      return;
    }
    read_body();
  }

  void on_read(beast::error_code ec) {
    if (closed_) return;
    if (ec) {
      if (ec == http::error::body_limit)
        return reject(
            413, "The request body is larger than the limit of " + std::to_string(ctx_.limits.max_body) + " bytes.");
      if (ec == http::error::header_limit) return reject(431, "The request head is too large.");
      if (ec != http::error::end_of_stream && ec != http::error::partial_message &&
          ec.category() == http::make_error_code(http::error::bad_target).category()) {
        return reject(400, "Malformed HTTP request: " + ec.message() + ".");
      }
      return close();  // closed by the client, timed out, or reset
    }
    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    const std::string_view target = msg.target();
    req.path = std::string(target.substr(0, target.find('?')));
    req.body = std::move(msg.body());
    req.authorization = std::string(msg[http::field::authorization]);
    req.x_api_key = std::string(msg["x-api-key"]);
    req.origin = std::string(msg[http::field::origin]);
    req.cors_request_headers = std::string(msg[http::field::access_control_request_headers]);
    cors_origin_ = cors_allow_origin(ctx_.cors_origins, req.origin);
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    parser_.reset();
    stream_.expires_never();
    in_response_ = true;
    auto self = shared_from_this();
    route(ctx_, req, self);
    if (!response_done_) watch_client();
  }

  // An error reply for a request that could not be parsed, then a lingering close.
  void reject(int status, const std::string& message) {
    in_response_ = true;
    keep_alive_ = false;
    version_ = 11;
    reply(error_reply(ApiError::of(status, "invalid_request_error", message)));
  }

  void begin_response(int status) {
    ctx_.metrics.count_request(status);
    if (ctx_.state == ServerState::kDraining) keep_alive_ = false;
  }

  // Reads while a response is in progress: EOF or an error means the client is gone.
  // Bytes that arrive (a pipelined next request) are kept for the next parse.
  void watch_client() {
    if (closed_ || aborted_ || watching_ || buffer_.size() >= kMaxPipelined) return;
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(kWatchChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_watch(ec, n); });
  }

  void on_watch(beast::error_code ec, size_t n) {
    watching_ = false;
    if (closed_ || aborted_) return;
    if (!ec) {
      buffer_.commit(n);
      if (!response_done_) {
        watch_client();
      } else if (after_watch_ != After::kNothing) {
        after_response();
      }
      return;
    }
    if (ec == asio::error::operation_aborted && after_watch_ != After::kNothing) {
      after_response();  // next_request() cancelled the watch to go on
    } else if (!response_done_) {
      abort_client();
    } else {
      close();  // the client left after reading its reply
    }
  }

  void enqueue(std::string data) {
    if (data.empty()) return;
    out_bytes_ += data.size();
    out_.push_back(std::move(data));
    if (!writing_) do_write();
  }

  void do_write() {
    // Many small SSE chunks go out as one write.
    while (out_.size() > 1) {
      std::string second = std::move(out_[1]);
      out_.erase(out_.begin() + 1);
      out_.front() += second;
    }
    writing_ = true;
    stream_.expires_after(std::chrono::milliseconds(static_cast<int64_t>(ctx_.limits.timeout_s * 1000.0)));
    asio::async_write(stream_, asio::buffer(out_.front()),
                      [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_write(ec, n); });
  }

  void on_write(beast::error_code ec, size_t n) {
    writing_ = false;
    if (ec) {
      abort_client();
      return;
    }
    out_bytes_ -= n;
    out_.pop_front();
    if (!out_.empty()) {
      do_write();
      return;
    }
    stream_.expires_never();  // an idle response (waiting for tokens) has no deadline
    if (response_done_) next_request();
  }

  // The response has been written: read the next request, or close. One read at a time:
  // a pending watch read is cancelled first and on_watch() goes on from there.
  void next_request() {
    if (closed_ || aborted_) return;
    after_watch_ = keep_alive_ && ctx_.state != ServerState::kDraining ? After::kRead : After::kLinger;
    if (watching_) {
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
      return;
    }
    after_response();
  }

  void after_response() {
    const After next = after_watch_;
    after_watch_ = After::kNothing;
    if (next == After::kLinger) {
      linger_close();
    } else {
      read_request();
    }
  }

  // Half-closes and discards what the client still sends (e.g. the rest of a body that
  // was too large) so it reads our reply instead of a reset, then closes.
  void linger_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    drained_ = 0;
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(buffer_.prepare(kWatchChunk), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > kMaxDrain) return self->close();
      self->buffer_.clear();
      self->drain();
    });
  }

  // The client is gone (or too slow): close, and cancel what it was waiting for.
  void abort_client() {
    if (aborted_) return;
    aborted_ = true;
    close();
    if (abort_fn_) {
      asio::post(stream_.get_executor(), std::move(abort_fn_));
      abort_fn_ = nullptr;
    }
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  ServerContext& ctx_;
  std::deque<std::string> out_;
  size_t out_bytes_ = 0;  // queued, not yet written
  size_t drained_ = 0;
  std::function<void()> abort_fn_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  std::string cors_origin_;  // Access-Control-Allow-Origin for the current request, or ""
  bool in_response_ = false;    // a request is being answered
  bool response_done_ = false;  // its last bytes are queued
  bool chunked_ = false;
  bool writing_ = false;
  bool watching_ = false;
  enum class After { kNothing, kRead, kLinger };
  After after_watch_ = After::kNothing;  // what follows the response once the watch ends
  bool aborted_ = false;
  bool closed_ = false;
};

std::weak_ptr<HttpSession> start_session(tcp::socket socket, ServerContext& ctx) {
  auto s = std::make_shared<HttpSession>(std::move(socket), ctx);
  s->start();
  return s;
}

void close_when_idle(const std::weak_ptr<HttpSession>& session) {
  if (auto s = session.lock()) s->close_when_idle();
}

void close_now(const std::weak_ptr<HttpSession>& session) {
  if (auto s = session.lock()) s->close_and_abort();
}

}  // namespace flashlm::server
