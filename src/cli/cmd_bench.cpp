// flashlm bench: prompt-processing and text-generation throughput, measured the way
// llama-bench measures it so figures can be compared side by side. pp<P> evaluates P
// tokens in one forward pass on an empty sequence; tg<N> times N single-token evals
// (decode without a prompt). Each test gets one uncounted warm-up run, then REPS timed
// runs reported as mean +- sample stddev of tokens/s. For tg, "bw%" relates the weight
// bytes one decode step reads to the read bandwidth measured at the same thread count:
// how close decoding is to the memory-bound limit.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <optional>
#include <span>
#include <thread>

#include "cli/common.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_q8.h"
#include "kernels/cpu/thread_pool.h"
#include "util/huge_pages.h"

namespace flashlm::cli {
namespace {

// The dispatched kernel level, plus the prefill GEMM tile where the CPU has one.
std::string kernels_name() {
  std::string k = cpu_isa_name(cpu_best_isa());
  if (k == "avx2") k = "AVX2+FMA+F16C";
  gemm::TileKernel tile;
  if (gemm::best_tile_kernel(&tile)) k += ", AVX-512 VNNI prefill GEMM";
  return k;
}

struct BenchArgs {
  std::string model;
  std::string threads;  // comma-separated list; empty: usable_cpu_count()
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 5;
  std::string output = "md";
  DType kv_type = kDefaultKvType;
  BackendKind backend = BackendKind::kCpu;
  FileBacking weights = FileBacking::kAuto;
};

struct Row {
  int threads = 0;
  std::string test;        // "pp512", "tg128"
  std::vector<double> ts;  // tokens/s per timed run
  std::optional<double> bw_pct;
  double mean() const { return std::accumulate(ts.begin(), ts.end(), 0.0) / static_cast<double>(ts.size()); }
  double stddev() const {
    if (ts.size() < 2) return 0.0;
    const double m = mean();
    double s = 0.0;
    for (double v : ts) s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(ts.size() - 1));
  }
};

// Parses "1,2,8"; every entry must be an integer in [1, 1024].
Result<std::vector<int>> parse_threads(const std::string& list) {
  std::vector<int> out;
  if (list.empty()) {
    out.push_back(default_thread_count());
    return out;
  }
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    const std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const bool digits = !item.empty() && item.size() <= 4 &&
                        std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
    const int v = digits ? std::stoi(item) : 0;
    if (!digits || v < 1 || v > 1024) {
      return Status::error("--threads: '" + item + "' is not a thread count in [1, 1024] (expected e.g. -t 1,2,4)");
    }
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t b = colon + 1;
        while (b < line.size() && line[b] == ' ') ++b;
        return line.substr(b);
      }
    }
  }
  return "unknown";
}

// Best-of-3 read bandwidth in bytes/s: each pool thread sums its contiguous share of a
// 512 MiB float buffer in huge-page memory, as the weights are by default (so the figure
// is the best the machine reads, not the cost of scattered 4 KiB pages). The buffer is
// first touched by the same threads so page faults and NUMA placement are not timed.
// Sixteen independent accumulators keep the adds off the critical path so the loop is
// bound by memory, not by add latency. 0 when the buffer cannot be had.
double measure_read_bandwidth(int n_threads) {
  constexpr int64_t kBlock = int64_t{1} << 18;  // floats per work item (1 MiB)
  constexpr int64_t kBlocks = 512;
  Result<HugePageBuffer> mem = HugePageBuffer::allocate(static_cast<size_t>(kBlock * kBlocks) * sizeof(float));
  if (!mem) return 0.0;
  const std::span<float> buf(reinterpret_cast<float*>(mem->data()), static_cast<size_t>(kBlock * kBlocks));
  ThreadPool pool(n_threads);
  pool.parallel_for(kBlocks, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b * kBlock; i < e * kBlock; ++i) buf[static_cast<size_t>(i)] = static_cast<float>(i & 7);
  });
  std::vector<float> partial(static_cast<size_t>(n_threads), 0.0f);
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(kBlocks, [&](int64_t b, int64_t e, int t) {
      float acc[16] = {};
      const float* p = buf.data() + b * kBlock;
      const float* end = buf.data() + e * kBlock;
      for (; p < end; p += 16) {
        for (int j = 0; j < 16; ++j) acc[j] += p[j];
      }
      float s = 0.0f;
      for (float a : acc) s += a;
      partial[static_cast<size_t>(t)] += s;
    });
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(buf.size() * sizeof(float)) / sec);
  }
  // Consume the sums so the reads cannot be optimised away.
  volatile float sink = std::accumulate(partial.begin(), partial.end(), 0.0f);
  (void)sink;
  return best;
}

// Bytes of weights one decode step reads: every tensor once, except that the input
// embedding contributes a single row, unless it doubles as the output matrix (tied),
// in which case the full matrix is read by the output projection.
double weight_bytes_per_token(const Model& model) {
  const gguf::File& f = model.file();
  double bytes = 0.0;
  for (const gguf::TensorInfo& t : f.tensors()) bytes += static_cast<double>(t.size_bytes);
  if (!model.config().tied_embeddings) {
    if (const gguf::TensorInfo* e = f.find_tensor("token_embd.weight"); e != nullptr && e->ne[1] > 0) {
      bytes -= static_cast<double>(e->size_bytes);
      bytes += static_cast<double>(e->size_bytes) / static_cast<double>(e->ne[1]);
    }
  }
  return bytes;
}

// Times one test run: a fresh sequence, then either one P-token eval or N single-token
// evals after an untimed start token. Returns tokens/s.
Result<double> time_run(Runner& runner, int seq, const std::vector<int32_t>& tokens, bool is_pp, int n) {
  std::vector<float> logits;
  runner.seq_truncate(seq, 0);
  Status st;
  if (is_pp) {
    const auto t0 = std::chrono::steady_clock::now();
    st = runner.eval(seq, std::span<const int32_t>(tokens.data(), static_cast<size_t>(n)), false, &logits);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!st) return st;
    return static_cast<double>(n) / sec;
  }
  st = runner.eval(seq, std::span<const int32_t>(tokens.data(), 1), false, &logits);
  if (!st) return st;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    st = runner.eval(seq, std::span<const int32_t>(tokens.data() + 1 + i, 1), false, &logits);
    if (!st) return st;
  }
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(n) / sec;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

int bench(const BenchArgs& a, const std::string& version) {
  Result<std::vector<int>> threads = parse_threads(a.threads);
  if (!threads) {
    print_error(threads.message());
    return 1;
  }
  if (a.n_prompt == 0 && a.n_gen == 0) {
    print_error("-p 0 and -n 0: nothing to measure");
    return 1;
  }
  Result<std::unique_ptr<Model>> loaded = Model::load(a.model, a.backend, {}, a.weights);
  if (!loaded) {
    print_error(loaded.message());
    return 1;
  }
  const Model& model = **loaded;
  const ModelConfig& cfg = model.config();
  const int64_t n_ctx = std::max<int64_t>(a.n_prompt, a.n_gen > 0 ? a.n_gen + 1 : 0);
  if (a.n_prompt > cfg.n_ctx_train) {
    print_error("-p " + std::to_string(a.n_prompt) + " exceeds the model's context of " +
                std::to_string(cfg.n_ctx_train) + " tokens");
    return 1;
  }
  if (n_ctx > cfg.n_ctx_train) {
    print_error("-n " + std::to_string(a.n_gen) + " (+1 start token) exceeds the model's context of " +
                std::to_string(cfg.n_ctx_train) + " tokens");
    return 1;
  }

  // A fixed pseudo-random token sequence (same every run), long enough for either test.
  std::vector<int32_t> tokens(static_cast<size_t>(n_ctx));
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (int32_t& t : tokens) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((state >> 33) % static_cast<uint64_t>(cfg.n_vocab));
  }

  double size_bytes = 0.0;
  int64_t n_params = 0;
  for (const gguf::TensorInfo& t : model.file().tensors()) {
    size_bytes += static_cast<double>(t.size_bytes);
    n_params += t.nelements();
  }
  const double size_mib = size_bytes / (1024.0 * 1024.0);
  const double params_m = static_cast<double>(n_params) / 1e6;
  std::string name = a.model.substr(a.model.find_last_of('/') == std::string::npos ? 0 : a.model.find_last_of('/') + 1);
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0) name.resize(name.size() - 5);

  // A row's decode bandwidth share is against the bandwidth its own thread count reads:
  // one core of a server cannot read what all of them can.
  std::vector<double> bandwidth(threads->size(), 0.0);
  if (a.n_gen > 0) {
    for (size_t i = 0; i < threads->size(); ++i) bandwidth[i] = measure_read_bandwidth((*threads)[i]);
  }
  const double bytes_per_token = weight_bytes_per_token(model);
  const bool json = a.output == "json";
  // Machine info goes to stdout before a markdown table, to stderr for JSON so stdout
  // stays one parseable document.
  FILE* info = json ? stderr : stdout;
  std::fprintf(info, "%s | CPU: %s | cores: %u | kernels: %s | KV cache: %s\n", version.c_str(),
               cpu_model_name().c_str(), std::thread::hardware_concurrency(), kernels_name().c_str(),
               kv_type_name(a.kv_type));
  std::fprintf(info, "weights: %s\n",
               model.file().backing() == FileBacking::kRead ? "read into huge pages" : "mapped");
  if (a.n_gen > 0) {
    std::fprintf(info, "read bandwidth (best of 3):");
    for (size_t i = 0; i < threads->size(); ++i) {
      std::fprintf(info, "%s %.2f GB/s at %d thread%s", i == 0 ? "" : ",", bandwidth[i] / 1e9, (*threads)[i],
                   (*threads)[i] == 1 ? "" : "s");
    }
    std::fprintf(info, " | weights read per token: %.1f MiB\n", bytes_per_token / (1024.0 * 1024.0));
  }
  std::fprintf(info, "\n");
  std::fflush(info);

  std::vector<Row> rows;
  for (size_t ti = 0; ti < threads->size(); ++ti) {
    const int nt = (*threads)[ti];
    note_thread_cap(nt);
    RuntimeOptions ro;
    ro.n_threads = nt;
    ro.n_ctx = n_ctx;
    ro.n_batch = std::max(a.n_prompt, 1);
    ro.kv_type = a.kv_type;
    Result<std::unique_ptr<Runner>> r = Runner::create(model, ro);
    if (!r) {
      print_error(r.message());
      return 1;
    }
    Runner& runner = **r;
    const int seq = runner.seq_new();
    for (int is_pp = 1; is_pp >= 0; --is_pp) {
      const int n = is_pp ? a.n_prompt : a.n_gen;
      if (n == 0) continue;
      Row row;
      row.threads = nt;
      row.test = (is_pp ? "pp" : "tg") + std::to_string(n);
      for (int rep = 0; rep <= a.reps; ++rep) {  // rep 0 is the warm-up
        Result<double> ts = time_run(runner, seq, tokens, is_pp != 0, n);
        if (!ts) {
          print_error(row.test + ": " + ts.message());
          return 1;
        }
        if (rep > 0) row.ts.push_back(*ts);
      }
      if (!is_pp && bandwidth[ti] > 0) row.bw_pct = 100.0 * bytes_per_token * row.mean() / bandwidth[ti];
      rows.push_back(std::move(row));
    }
  }

  if (json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();  // keeps llama-bench's column order
    for (const Row& r : rows) {
      out.push_back({{"model", name},
                     {"size_mib", size_mib},
                     {"params_m", params_m},
                     {"threads", r.threads},
                     {"test", r.test},
                     {"t_s", r.mean()},
                     {"t_s_stddev", r.stddev()},
                     {"bw_pct", r.bw_pct ? nlohmann::ordered_json(*r.bw_pct) : nlohmann::ordered_json(nullptr)},
                     {"samples", r.ts}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("| model | size | params | threads | test | t/s | bw%% |\n");
  std::printf("| ----- | ---: | -----: | ------: | ---: | --: | --: |\n");
  for (const Row& r : rows) {
    std::printf("| %s | %s MiB | %s M | %d | %s | %s ± %s | %s |\n", name.c_str(), fmt("%.2f", size_mib).c_str(),
                fmt("%.2f", params_m).c_str(), r.threads, r.test.c_str(), fmt("%.2f", r.mean()).c_str(),
                fmt("%.2f", r.stddev()).c_str(), r.bw_pct ? fmt("%.1f", *r.bw_pct).c_str() : "");
  }
  return 0;
}

}  // namespace

void add_bench(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand("bench", "prompt-processing and generation speed (like llama-bench)");
  sub->add_option("-m,--model", args->model, "GGUF model file")->required();
  sub->add_option("-t,--threads", args->threads, "comma-separated thread counts, e.g. 1,2,4 (default: the CPUs this process may use)");
  sub->add_option("-p,--n-prompt", args->n_prompt, "prompt tokens for the pp test (0: skip)")->check(CLI::Range(0, 1 << 20));
  sub->add_option("-n,--n-gen", args->n_gen, "generated tokens for the tg test (0: skip)")->check(CLI::Range(0, 1 << 20));
  sub->add_option("-r,--repetitions", args->reps, "timed runs per test (after one warm-up)")->check(CLI::Range(1, 1000));
  sub->add_option("-o,--output", args->output, "output format: md or json")->check(CLI::IsMember({"md", "json"}));
  add_kv_type_flag(sub, &args->kv_type);
  add_backend_flag(sub, &args->backend);
  add_mmap_flags(sub, &args->weights);
  const CLI::App* root = &app;
  sub->final_callback([args, exit_code, root] { *exit_code = bench(*args, root->version()); });
}

}  // namespace flashlm::cli
