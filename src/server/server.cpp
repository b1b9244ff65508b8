#include "server/server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <list>
#include <optional>
#include <thread>

#include "server/http_session.h"
#include "util/version.h"
#include "util/xxhash64.h"

namespace flashlm::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::steady_clock;

namespace {
constexpr auto kSampleEvery = std::chrono::seconds(1);
constexpr auto kCloseCheckEvery = std::chrono::milliseconds(50);
constexpr auto kCloseGrace = std::chrono::seconds(10);  // for clients still reading a finished reply

// system_fingerprint: "fp_" and 12 hex digits of a hash of the release and the model, so
// a client sees when either changes.
std::string fingerprint(const std::string& model_id) {
  const std::string what = std::string(kVersion) + "/" + model_id;
  const uint64_t h = xxh64(what.data(), what.size());
  char buf[16];
  std::snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(h & 0xFFFFFFFFFFFFull));
  return std::string("fp_") + buf;
}
}  // namespace

// Member order matters for destruction: the io_context (and the sessions and jobs its
// pending handlers hold) goes before the backend and the context they point to.
struct Server::Impl {
  ServerOptions opts;
  ServerContext ctx;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<EmbeddingService> embeddings;
  asio::thread_pool prep{1};  // request preparation (templates, tokenizing)
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::signal_set signals{ioc};
  asio::steady_timer sample_timer{ioc};
  asio::steady_timer close_timer{ioc};
  std::list<std::weak_ptr<HttpSession>> sessions;
  // Keeps run() going while the scheduler drains, even if no connection has I/O pending.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> drain_guard;
  std::thread drainer;
  steady_clock::time_point t0 = steady_clock::now();
  steady_clock::time_point drained_at;
  int exit_code = 0;
  bool stopping = false;

  ~Impl() {
    // The preparation and scheduler threads post into the io_context: stop them before
    // it goes away.
    prep.join();
    if (drainer.joinable()) drainer.join();
    if (backend) backend->stop(false);
    if (embeddings) embeddings->stop(false);
  }

  Status listen() {
    boost::system::error_code ec;
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(opts.host, std::to_string(opts.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) return Status::error("cannot resolve '" + opts.host + "': " + ec.message());
    const tcp::endpoint ep = results.begin()->endpoint();
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::error("cannot listen on " + opts.host + ":" + std::to_string(opts.port) + ": " + ec.message());
    }
    return Status::ok();
  }

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || stopping) return;
      if (ec) {
        // Out of descriptors or similar: retry shortly rather than spin.
        std::fprintf(stderr, "flashlm serve: accept: %s\n", ec.message().c_str());
        auto retry = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(100));
        retry->async_wait([this, retry](boost::system::error_code) { accept(); });
        return;
      }
      socket.set_option(tcp::no_delay(true), ec);  // SSE chunks go out as they are made
      sessions.remove_if([](const std::weak_ptr<HttpSession>& s) { return s.expired(); });
      sessions.push_back(start_session(std::move(socket), ctx));
      accept();
    });
  }

  void sample() {
    sample_timer.expires_after(kSampleEvery);
    sample_timer.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping) return;
      if (backend) {
        const double now = std::chrono::duration<double>(steady_clock::now() - t0).count();
        ctx.metrics.sample(backend->stats(), now);
      }
      sample();
    });
  }

  void wait_signal() {
    signals.async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (stopping) {
        std::fprintf(stderr, "flashlm serve: second signal, exiting without draining\n");
        std::_Exit(1);
      }
      std::fprintf(stderr, "\nflashlm serve: signal %d, draining in-flight requests (again to force)\n", sig);
      begin_shutdown();
      wait_signal();
    });
  }

  void set_backend(std::unique_ptr<Backend> b, std::unique_ptr<EmbeddingService> e) {
    if (stopping) {
      b->stop(false);
      if (e) e->stop(false);
      return;
    }
    backend = std::move(b);
    ctx.backend = backend.get();
    embeddings = std::move(e);
    ctx.embeddings = embeddings.get();
    ctx.created = static_cast<int64_t>(std::time(nullptr));
    ctx.fingerprint = fingerprint(backend->model_id());
    ctx.state = ServerState::kReady;
    std::fprintf(stderr, "flashlm serve: model '%s' ready (context %lld tokens)\n", backend->model_id().c_str(),
                 static_cast<long long>(backend->n_ctx()));
    if (embeddings) {
      std::fprintf(stderr, "flashlm serve: embedding model '%s' ready (%lld dimensions, up to %lld tokens)\n",
                   embeddings->model_id().c_str(), static_cast<long long>(embeddings->encoder().dim()),
                   static_cast<long long>(embeddings->encoder().max_tokens()));
    }
  }

  // Stop accepting, refuse new work (503), let the scheduler finish what it has.
  void begin_shutdown() {
    if (stopping) return;
    stopping = true;
    ctx.state = ServerState::kDraining;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    sample_timer.cancel();
    for (auto& s : sessions) close_when_idle(s);
    if (!backend) {
      finish();
      return;
    }
    // stop(true) blocks until the scheduler is done; its events still need this thread.
    drain_guard.emplace(ioc.get_executor());
    drainer = std::thread([this] {
      backend->stop(true);
      if (embeddings) embeddings->stop(true);
      asio::post(ioc, [this] { finish(); });
    });
  }

  // Every request has finished: close connections once their replies are written.
  void finish() {
    drain_guard.reset();
    signals.cancel();
    drained_at = steady_clock::now();
    check_closed();
  }

  void check_closed() {
    sessions.remove_if([](const std::weak_ptr<HttpSession>& s) { return s.expired(); });
    const bool late = steady_clock::now() - drained_at > kCloseGrace;
    for (auto& s : sessions) late ? close_now(s) : close_when_idle(s);
    if (sessions.empty()) return;  // nothing left: run() returns
    close_timer.expires_after(kCloseCheckEvery);
    close_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) check_closed();
    });
  }
};

Result<std::unique_ptr<Server>> Server::create(const ServerOptions& opts) {
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  impl->ctx.api_key = opts.api_key;
  impl->ctx.cors_origins = opts.cors_origins;
  impl->ctx.limits = opts.limits;
  if (Status st = impl->listen(); !st) return st;
  if (opts.handle_signals) {
    impl->signals.add(SIGINT);
    impl->signals.add(SIGTERM);
  }
  Impl* raw = impl.get();
  impl->ctx.post = [ex = raw->ioc.get_executor()](std::function<void()> fn) { asio::post(ex, std::move(fn)); };
  impl->ctx.offload = [ex = raw->prep.get_executor()](std::function<void()> fn) { asio::post(ex, std::move(fn)); };
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

uint16_t Server::port() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

const std::string& Server::host() const { return impl_->opts.host; }

void Server::set_backend(std::unique_ptr<Backend> backend, std::unique_ptr<EmbeddingService> embeddings) {
  auto shared = std::make_shared<std::pair<std::unique_ptr<Backend>, std::unique_ptr<EmbeddingService>>>(
      std::move(backend), std::move(embeddings));
  asio::post(impl_->ioc, [impl = impl_.get(), shared] {
    impl->set_backend(std::move(shared->first), std::move(shared->second));
  });
}

void Server::fail(const std::string& message) {
  asio::post(impl_->ioc, [impl = impl_.get(), message] {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    impl->exit_code = 1;
    impl->begin_shutdown();
  });
}

void Server::shutdown() {
  asio::post(impl_->ioc, [impl = impl_.get()] { impl->begin_shutdown(); });
}

int Server::run() {
  impl_->accept();
  impl_->sample();
  if (impl_->opts.handle_signals) impl_->wait_signal();
  impl_->ioc.run();
  if (impl_->drainer.joinable()) impl_->drainer.join();
  return impl_->exit_code;
}

}  // namespace flashlm::server
