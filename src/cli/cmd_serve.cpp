// flashlm serve: the OpenAI-compatible HTTP server (src/server/) over the continuous-
// batching scheduler. Listens before the model loads so /health can report "loading".
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/common.h"
#include "embed/encoder.h"
#include "kv/kv_budget.h"
#include "server/server.h"

namespace flashlm::cli {
namespace {

struct ServeArgs {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;
  int64_t ctx = 0;
  int threads = 0;
  int batch = 512;
  std::string api_key;
  std::vector<std::string> cors_origins;
  int max_queue = 256;
  double timeout_s = 600.0;
  DType kv_type = kDefaultKvType;
  BackendKind backend = BackendKind::kCpu;
  FileBacking weights = FileBacking::kAuto;
  std::vector<LoraSpec> loras;
  std::string kv_mem;  // empty: n_parallel full contexts
  std::string kv_store;       // persistent KV block directory; empty: off
  std::string kv_store_size = "2G";
  std::string embedding_model;  // a Hugging Face encoder directory for /v1/embeddings; empty: none
  int embedding_threads = 0;    // 0: as --threads
};

// Each connection is a descriptor; the usual soft limit (1024) would refuse clients long
// before the server is busy. Raising the soft limit up to the hard one is unprivileged.
void raise_open_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
    std::fprintf(stderr, "warning: could not raise the open-file limit; at most %llu connections\n",
                 static_cast<unsigned long long>(before));
  }
}

int serve(const ServeArgs& a) {
  std::signal(SIGPIPE, SIG_IGN);  // a vanished client must be an error code, not a signal
  raise_open_file_limit();
  int64_t kv_mem = 0;
  if (!a.kv_mem.empty()) {
    Result<int64_t> bytes = parse_kv_mem(a.kv_mem, physical_memory_bytes());
    if (!bytes) {
      print_error(bytes.message());
      return 1;
    }
    kv_mem = *bytes;
  }
  int64_t kv_store_bytes = 0;
  if (!a.kv_store.empty()) {
    // A disk bound: bytes with a suffix, not a share of RAM.
    Result<int64_t> bytes = a.kv_store_size.find('%') == std::string::npos
                                ? parse_kv_mem(a.kv_store_size, 0)
                                : Result<int64_t>(Status::error("takes bytes (e.g. 20G), not a share of RAM"));
    if (!bytes) {
      print_error("--kv-store-size: " + bytes.message());
      return 1;
    }
    kv_store_bytes = *bytes;
  }
  server::ServerOptions so;
  so.host = a.host;
  so.port = static_cast<uint16_t>(a.port);
  so.api_key = a.api_key;
  so.cors_origins = a.cors_origins;
  so.limits.timeout_s = a.timeout_s;
  Result<std::unique_ptr<server::Server>> srv = server::Server::create(so);
  if (!srv) {
    print_error(srv.message());
    return 1;
  }
  server::Server& s = *srv.value();
  const std::string shown_host = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
  const std::string url = "http://" + shown_host + ":" + std::to_string(s.port());
  std::fprintf(stderr,
               "flashlm serve: listening on %s (loading '%s')\n"
               "  chat page:  open %s/ in a browser\n"
               "  OpenAI API: %s/v1 (chat/completions, completions, models, embeddings); metrics at %s/metrics\n",
               url.c_str(), a.model.c_str(), url.c_str(), url.c_str(), url.c_str());

  const bool loopback = a.host == "localhost" || a.host == "::1" || a.host.rfind("127.", 0) == 0;
  if (!loopback && a.api_key.empty()) {
    std::fprintf(stderr, "warning: listening on %s without --api-key: anyone who can reach it can use the model\n",
                 a.host.c_str());
  }

  SchedulerOptions sched;
  sched.n_parallel = a.parallel;
  sched.n_ctx = a.ctx;
  sched.n_threads = a.threads;
  note_thread_cap(a.threads);
  sched.step_tokens = a.batch;
  sched.kv_type = a.kv_type;
  sched.max_queue = a.max_queue;
  sched.kv_mem_bytes = kv_mem;
  sched.kv_store_dir = a.kv_store;
  if (kv_store_bytes > 0) sched.kv_store_bytes = kv_store_bytes;
  std::thread loader([&s, &a, sched] {
    std::unique_ptr<server::EmbeddingService> emb;
    if (!a.embedding_model.empty()) {
      Result<embed::Encoder> enc = embed::Encoder::load(a.embedding_model);
      if (!enc) {
        s.fail("--embedding-model: " + enc.status().message());
        return;
      }
      const int t = a.embedding_threads > 0 ? a.embedding_threads : a.threads > 0 ? a.threads : usable_cpu_count();
      emb = std::make_unique<server::EmbeddingService>(std::move(enc).value(), t, static_cast<size_t>(a.max_queue));
    }
    Result<std::unique_ptr<server::Backend>> b = server::load_model_backend(a.model, sched, a.backend, a.loras, a.weights);
    if (!b) {
      if (emb) emb->stop(false);
      s.fail(b.message());
    } else {
      s.set_backend(std::move(b.value()), std::move(emb));
    }
  });
  const int rc = s.run();
  loader.join();  // the loader talks to the server: it must be done before the server goes
  srv.value().reset();
  if (rc == 0) std::fprintf(stderr, "flashlm serve: stopped\n");
  return rc;
}

}  // namespace

void add_serve(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server with a chat page");
  sub->add_option("-m,--model", args->model, "GGUF model file")->required();
  sub->add_option("--embedding-model", args->embedding_model,
                  "Hugging Face encoder directory (BERT-style, e.g. all-MiniLM-L6-v2) served on /v1/embeddings");
  sub->add_option("--embedding-threads", args->embedding_threads, "threads of the embedding model (0: as -t)")
      ->check(CLI::Range(0, 1024));
  sub->add_option("--host", args->host, "address to listen on (default: loopback only)");
  sub->add_option("--port", args->port, "port (0: any free one)")->check(CLI::Range(0, 65535));
  sub->add_option("--parallel", args->parallel, "sequences generated at once")->check(CLI::Range(1, 1024));
  sub->add_option("-c,--ctx-size", args->ctx, "context size per sequence (0: min(model, 4096))")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  sub->add_option("-t,--threads", args->threads, "threads (0: the CPUs this process may use)")->check(CLI::Range(0, 1024));
  sub->add_option("-b,--batch-size", args->batch, "tokens per forward pass")->check(CLI::Range(1, 65536));
  add_kv_type_flag(sub, &args->kv_type);
  add_backend_flag(sub, &args->backend);
  add_mmap_flags(sub, &args->weights);
  add_lora_flags(sub, &args->loras);
  sub->add_option("--api-key", args->api_key, "require 'Authorization: Bearer KEY' on the API");
  sub->add_option("--cors-origin", args->cors_origins,
                  "origins (e.g. https://app.example.com, or *) whose web pages may call the API from a "
                  "browser; repeat or separate with commas (default: none)")
      ->delimiter(',');
  sub->add_option("--max-queue", args->max_queue, "waiting requests beyond the free running slots (more get 429); also the embedding requests that may wait")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_option("--timeout", args->timeout_s, "seconds an idle connection or a stalled write may wait")
      ->check(CLI::Range(0.1, 86400.0));
  sub->add_option("--kv-mem", args->kv_mem,
                  "KV cache memory: bytes (e.g. 2G) or a share of RAM (e.g. 25%); beyond the running "
                  "sequences it holds cached prompt prefixes (default: --parallel full contexts)");
  sub->add_option("--kv-store", args->kv_store,
                  "directory of a persistent KV block store: prompt prefixes computed once are found "
                  "again after a restart (default: off)");
  sub->add_option("--kv-store-size", args->kv_store_size,
                  "bound on the KV store's bytes on disk, e.g. 20G; least recently used blocks go first (default: 2G)");
  sub->final_callback([args, exit_code] { *exit_code = serve(*args); });
}

}  // namespace flashlm::cli
