// Pieces shared by the commands: common flags, loading a model with its tokenizer and
// either the engine (run, chat) or a bare model runner (perplexity), timing and memory
// reporting.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <string>

#include "engine/generate.h"
#include "engine/runner.h"
#include "engine/scheduler.h"
#include "factory/activations.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace flashlm::cli {

struct CommonArgs {
  std::string model;
  int threads = 0;
  int64_t ctx = 0;
  int batch = 512;
  DType kv_type = kDefaultKvType;
  BackendKind backend = BackendKind::kCpu;
  std::vector<LoraSpec> loras;
  FileBacking weights = FileBacking::kAuto;
};

void add_common_flags(CLI::App* app, CommonArgs* a);
// --kv-type f32|f16|q8_0 into *type.
void add_kv_type_flag(CLI::App* app, DType* type);
// --backend cpu|reference|cuda into *kind.
void add_backend_flag(CLI::App* app, BackendKind* kind);
// --mmap / --no-mmap into *weights (default kAuto: read into huge pages when the file
// takes at most half the available memory, else mapped).
void add_mmap_flags(CLI::App* app, FileBacking* weights);
// --lora FILE and --lora-scaled FILE SCALE (each repeatable) into *loras.
void add_lora_flags(CLI::App* app, std::vector<LoraSpec>* loras);
// -n, the sampling flags, --stop and --ignore-eos into a request's options.
void add_sampling_flags(CLI::App* app, RequestOptions* r);

using tok::Tokenizer;

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Runner> runner;     // with LoadFor::kRunner
  std::unique_ptr<Scheduler> engine;  // with LoadFor::kEngine: one sequence, the fast prefill GEMM
  int n_threads = 0;
  double load_ms = 0.0;
};

enum class LoadFor { kTokenizer, kRunner, kEngine };
// Loads the model's tokenizer, and for kRunner/kEngine the model and a runner or the
// engine. Errors are printed.
std::unique_ptr<Loaded> load(const CommonArgs& a, LoadFor what);

// The model's chat template (from the file, else a built-in one for its family) applied
// to messages; prints an error and returns false on failure.
bool render_chat(const Loaded& l, const nlohmann::json& messages, bool add_generation_prompt, std::string* out);

// Tokens of a prompt; text rendered by a chat template has its special tokens parsed
// and gets BOS only if the template did not write it.
std::vector<int32_t> tokenize_for_model(const Tokenizer& tok, const std::string& text, bool from_template);

// The factory's calibration pass (factory/activations.h) over a text, for imatrix and
// prune: the model, the text's tokens, and the statistics, with a progress line
// "<label>: chunk i/n, s" on stderr. Errors are printed; null on failure.
struct Calibration {
  std::unique_ptr<Model> model;
  std::vector<int32_t> tokens;
  int32_t bos = -1;  // the token each chunk starts with, or -1 when the model uses none
  factory::ActivationStats stats;
};
std::unique_ptr<Calibration> run_calibration(const char* label, const std::string& model_path,
                                             const std::string& text_path, int64_t n_ctx, int64_t max_chunks,
                                             int n_threads);

void print_error(const std::string& msg);
// A whole file as bytes, or nullopt after printing why it could not be read.
std::optional<std::string> read_text_file(const std::string& path);
// Says on stderr when -t asks for more threads than this process may use: the pool then
// starts only as many (kernels/cpu/thread_pool.h) and splits each op as asked.
void note_thread_cap(int requested);
// Runs one request on the engine, streaming text to stdout (and into *reply when given),
// then a newline.
Status generate_to_stdout(Loaded& l, RequestOptions req, GenerateStats* stats, std::string* reply = nullptr);
double peak_rss_mib();
void print_timings(const Loaded& l, const GenerateStats& s);

// Each command registers its subcommand; its callback stores the exit status.
void add_run(CLI::App& app, int* exit_code);
void add_chat(CLI::App& app, int* exit_code);
void add_tokenize(CLI::App& app, int* exit_code);
void add_embed(CLI::App& app, int* exit_code);
void add_perplexity(CLI::App& app, int* exit_code);
void add_info(CLI::App& app, int* exit_code);
void add_bench(CLI::App& app, int* exit_code);
void add_serve(CLI::App& app, int* exit_code);
void add_moefy(CLI::App& app, int* exit_code);
void add_quantize(CLI::App& app, int* exit_code);
void add_convert(CLI::App& app, int* exit_code);
void add_eval(CLI::App& app, int* exit_code);
void add_imatrix(CLI::App& app, int* exit_code);
void add_prune(CLI::App& app, int* exit_code);
void add_finetune(CLI::App& app, int* exit_code);
void add_distill(CLI::App& app, int* exit_code);
void add_flash(CLI::App& app, int* exit_code);

}  // namespace flashlm::cli
