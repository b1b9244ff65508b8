// `flashlm serve`'s server: listens first (GET /health answers 503 "loading" while the
// model loads), then serves the OpenAI API from one I/O thread over the Backend's
// scheduler thread. SIGINT/SIGTERM (when handled) stop accepting, drain in-flight
// requests and end run(); a second signal exits at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/backend.h"
#include "server/server_context.h"
#include "util/status.h"

namespace flashlm::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see Server::port())
  std::string api_key;
  std::vector<std::string> cors_origins;  // see ServerContext::cors_origins
  ServerLimits limits;
  bool handle_signals = true;
};

class Server {
 public:
  // Binds and listens; requests are answered once run() is called.
  static Result<std::unique_ptr<Server>> create(const ServerOptions& opts);
  ~Server();

  uint16_t port() const;
  const std::string& host() const;

  // Thread-safe. The loaded model: the server becomes ready. If the server is already
  // shutting down, the backend is stopped and dropped.
  void set_backend(std::unique_ptr<Backend> backend, std::unique_ptr<EmbeddingService> embeddings = nullptr);
  // Thread-safe. Loading failed: run() ends with exit code 1.
  void fail(const std::string& message);
  // Thread-safe. Graceful shutdown, as on SIGTERM.
  void shutdown();

  // Serves until shut down and drained. Returns the process exit code.
  int run();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashlm::server
