#include "cli/common.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "chat/builtin_templates.h"
#include "chat/chat_template.h"

namespace flashlm::cli {

void add_common_flags(CLI::App* app, CommonArgs* a) {
  app->add_option("-m,--model", a->model, "GGUF model file")->required();
  app->add_option("-t,--threads", a->threads, "threads (0: the CPUs this process may use)")->check(CLI::Range(0, 1024));
  app->add_option("-c,--ctx-size", a->ctx, "context size in tokens (0: min(model, 4096))")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  app->add_option("-b,--batch-size", a->batch, "tokens per forward pass")->check(CLI::Range(1, 65536));
  add_kv_type_flag(app, &a->kv_type);
  add_backend_flag(app, &a->backend);
  add_mmap_flags(app, &a->weights);
  add_lora_flags(app, &a->loras);
}

void add_mmap_flags(CLI::App* app, FileBacking* weights) {
  CLI::Option* map = app->add_flag_callback(
      "--mmap", [weights] { *weights = FileBacking::kMap; },
      "map the model file instead of reading it: starts sooner and shares the page cache between processes, "
      "decodes slower (default: read into huge pages when the file takes at most half the available memory)");
  CLI::Option* read = app->add_flag_callback(
      "--no-mmap", [weights] { *weights = FileBacking::kRead; },
      "always read the model file into huge-page memory at load, whatever its size");
  map->excludes(read);
}

void add_lora_flags(CLI::App* app, std::vector<LoraSpec>* loras) {
  app->add_option_function<std::vector<std::string>>(
         "--lora",
         [loras](const std::vector<std::string>& paths) {
           for (const std::string& p : paths) loras->push_back(LoraSpec{p, 1.0f});
         },
         "LoRA adapter (llama.cpp's LoRA GGUF, e.g. from flashlm finetune --lora-out) applied at run time; "
         "repeatable")
      ->type_name("FILE");
  app->add_option_function<std::vector<std::string>>(
         "--lora-scaled",
         [loras](const std::vector<std::string>& v) {
           for (size_t i = 0; i + 1 < v.size(); i += 2) {
             float scale = 0.0f;
             try {
               size_t used = 0;
               scale = std::stof(v[i + 1], &used);
               if (used != v[i + 1].size() || !std::isfinite(scale)) throw std::invalid_argument("scale");
             } catch (const std::exception&) {
               throw CLI::ValidationError("--lora-scaled", "the scale '" + v[i + 1] + "' is not a finite number");
             }
             loras->push_back(LoraSpec{v[i], scale});
           }
         },
         "LoRA adapter with a user-defined scale (FILE SCALE); repeatable")
      ->type_size(2)
      ->type_name("FILE SCALE");
}

void add_backend_flag(CLI::App* app, BackendKind* kind) {
  app->add_option_function<std::string>(
         "--backend",
         [kind](const std::string& name) {
           Result<BackendKind> k = backend_kind_from_name(name);
           if (!k) throw CLI::ValidationError("--backend", k.message());
           *kind = *k;
         },
         "compute backend: cpu (default), reference (scalar reference ops, slow) or cuda")
      ->type_name("NAME");
}

void add_kv_type_flag(CLI::App* app, DType* type) {
  app->add_option_function<std::string>(
         "--kv-type",
         [type](const std::string& name) {
           Result<DType> t = kv_type_from_name(name);
           if (!t) throw CLI::ValidationError("--kv-type", t.message());
           *type = *t;
         },
         std::string("KV cache element type: f32, f16 or q8_0 (default ") + kv_type_name(kDefaultKvType) + ")")
      ->type_name("TYPE");
}

void add_sampling_flags(CLI::App* app, RequestOptions* g) {
  SamplingParams& s = g->sampling;
  app->add_option("-n,--n-predict", g->max_tokens, "tokens to generate (-1: until end of text)")
      ->check(CLI::Range(-1, 1 << 24));
  app->add_option("--temp", s.temperature, "temperature (0: greedy)");
  app->add_option("--top-k", s.top_k, "top-k (0: off)");
  app->add_option("--top-p", s.top_p, "top-p (1: off)");
  app->add_option("--min-p", s.min_p, "min-p (0: off)");
  app->add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty (1: off)");
  app->add_option("--repeat-last-n", s.repeat_last_n, "tokens the penalties look back over");
  app->add_option("--frequency-penalty", s.frequency_penalty, "frequency penalty");
  app->add_option("--presence-penalty", s.presence_penalty, "presence penalty");
  app->add_option_function<int64_t>(
      "-s,--seed", [&s](const int64_t& v) { s.seed = v < 0 ? kSeedRandom : static_cast<uint64_t>(v); },
      "random seed (-1 or omitted: random)");
  app->add_option("--stop", g->stop, "stop string (repeatable)");
  app->add_flag("--ignore-eos", g->ignore_eos, "keep generating past end-of-text tokens");
}

void print_error(const std::string& msg) { std::fprintf(stderr, "error: %s\n", msg.c_str()); }

void note_thread_cap(int requested) {
  const int cpus = usable_cpu_count();
  if (requested <= cpus) return;
  std::fprintf(stderr,
               "note: -t %d is more than the %d CPUs this process may use: %d threads run, each op split in %d "
               "parts (more threads would only take turns on the same CPUs)\n",
               requested, cpus, cpus, requested);
}

Status generate_to_stdout(Loaded& l, RequestOptions req, GenerateStats* stats, std::string* reply) {
  Status st = generate(*l.engine, std::move(req),
                       [reply](std::string_view piece) {
                         if (reply != nullptr) *reply += piece;
                         std::fwrite(piece.data(), 1, piece.size(), stdout);
                         std::fflush(stdout);
                       },
                       stats);
  std::fputc('\n', stdout);
  return st;
}

double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

std::unique_ptr<Loaded> load(const CommonArgs& a, LoadFor what) {
  const auto t0 = std::chrono::steady_clock::now();
  auto l = std::make_unique<Loaded>();
  if (what == LoadFor::kTokenizer) {
    Result<gguf::File> f = gguf::File::open(a.model);
    if (!f) {
      print_error(f.message());
      return nullptr;
    }
    Result<Tokenizer> tok = Tokenizer::from_gguf(*f);
    if (!tok) {
      print_error("'" + a.model + "': " + tok.message());
      return nullptr;
    }
    l->tok = std::make_unique<Tokenizer>(std::move(tok.value()));
    return l;
  }
  Result<std::unique_ptr<Model>> m = Model::load(a.model, a.backend, a.loras, a.weights);
  if (!m) {
    print_error(m.message());
    return nullptr;
  }
  l->model = std::move(m.value());
  Result<Tokenizer> tok = Tokenizer::from_gguf(l->model->file());
  if (!tok) {
    print_error("'" + a.model + "': " + tok.message());
    return nullptr;
  }
  l->tok = std::make_unique<Tokenizer>(std::move(tok.value()));
  l->n_threads = a.threads == 0 ? default_thread_count() : a.threads;
  note_thread_cap(l->n_threads);
  if (what == LoadFor::kEngine) {
    SchedulerOptions o;
    o.n_parallel = 1;
    o.n_ctx = a.ctx;
    o.step_tokens = a.batch;
    o.n_threads = l->n_threads;
    o.batch_invariant = false;  // one sequence: the fast panel GEMM for prefill
    o.kv_type = a.kv_type;
    Result<std::unique_ptr<Scheduler>> s = Scheduler::create(*l->model, *l->tok, o);
    if (!s) {
      print_error(s.message());
      return nullptr;
    }
    l->engine = std::move(s.value());
  } else {
    RuntimeOptions ro;
    ro.n_threads = l->n_threads;
    ro.n_ctx = a.ctx;
    ro.n_batch = a.batch;
    ro.kv_type = a.kv_type;
    Result<std::unique_ptr<Runner>> r = Runner::create(*l->model, ro);
    if (!r) {
      print_error(r.message());
      return nullptr;
    }
    l->runner = std::move(r.value());
  }
  l->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return l;
}

bool render_chat(const Loaded& l, const nlohmann::json& messages, bool add_generation_prompt, std::string* out) {
  const gguf::File& f = l.model->file();
  std::string source;
  Result<std::string> tmpl = f.get_string_or("tokenizer.chat_template", "");
  if (tmpl && !tmpl->empty()) {
    source = *tmpl;
  } else {
    const char* builtin = chat::builtin_template(l.model->config().arch);
    if (builtin == nullptr) {
      print_error("the model has no chat template (tokenizer.chat_template) and no built-in one exists for '" +
                  l.model->config().arch + "'");
      return false;
    }
    source = builtin;
  }
  const Tokenizer& tok = *l.tok;
  const std::string bos = tok.bos() >= 0 ? tok.token_text(tok.bos()) : "";
  const std::string eos = tok.eos() >= 0 ? tok.token_text(tok.eos()) : "";
  Result<std::string> r = chat::render_chat(source, messages, add_generation_prompt, bos, eos);
  if (!r) {
    print_error(r.message());  // says "chat template" already
    return false;
  }
  *out = std::move(r.value());
  return true;
}

void print_timings(const Loaded& l, const GenerateStats& s) {
  const double pp = s.prompt_ms > 0 ? 1000.0 * static_cast<double>(s.n_prompt) / s.prompt_ms : 0.0;
  const double tg = s.gen_ms > 0 ? 1000.0 * static_cast<double>(s.n_generated) / s.gen_ms : 0.0;
  std::fprintf(stderr,
               "\n[flashlm] load %.0f ms | prompt %lld tokens, %.1f ms, %.2f tokens/s | generation %lld tokens, "
               "%.1f ms, %.2f tokens/s | peak memory %.1f MiB | threads %d | finish: %s\n",
               l.load_ms, static_cast<long long>(s.n_prompt), s.prompt_ms, pp, static_cast<long long>(s.n_generated),
               s.gen_ms, tg, peak_rss_mib(), l.n_threads, s.finish_reason.c_str());
}

std::optional<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    print_error("cannot read '" + path + "'");
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<Calibration> run_calibration(const char* label, const std::string& model_path,
                                             const std::string& text_path, int64_t n_ctx, int64_t max_chunks,
                                             int n_threads) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::optional<std::string> text = read_text_file(text_path);
  if (!text) return nullptr;
  if (text->empty()) {
    print_error("the calibration text '" + text_path + "' is empty");
    return nullptr;
  }
  auto c = std::make_unique<Calibration>();
  Result<std::unique_ptr<Model>> m = Model::load(model_path);
  if (!m) {
    print_error(m.message());
    return nullptr;
  }
  c->model = std::move(m).value();
  Result<Tokenizer> tok = Tokenizer::from_gguf(c->model->file());
  if (!tok) {
    print_error("'" + model_path + "': " + tok.message());
    return nullptr;
  }
  c->tokens = tok->encode(*text, true, false);  // with BOS where the model adds one, as llama-imatrix tokenizes
  c->bos = tok->add_bos() ? tok->bos() : -1;
  note_thread_cap(n_threads);
  factory::CollectOptions co;
  co.n_ctx = n_ctx;
  co.max_chunks = max_chunks;
  co.n_threads = n_threads;
  const bool tty = isatty(STDERR_FILENO) != 0;
  co.progress = [tty, t0, label](int64_t chunk, int64_t n) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%s%s: calibration chunk %lld/%lld, %.1f s%s", tty ? "\r" : "", label,
                 static_cast<long long>(chunk), static_cast<long long>(n), s, tty && chunk < n ? "" : "\n");
  };
  Result<factory::ActivationStats> stats = factory::collect_activations(*c->model, c->tokens, c->bos, co);
  if (!stats) {
    print_error("calibration on '" + text_path + "': " + stats.message());
    return nullptr;
  }
  c->stats = std::move(stats).value();
  return c;
}

}  // namespace flashlm::cli
