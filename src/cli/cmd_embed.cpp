// flashlm embed: sentence embeddings, one JSON array of floats per input on stdout: from
// an encoder model directory (embed/encoder.h), or from a GGUF decoder model with
// llama.cpp's pooled, normalised hidden states (engine/decoder_embed.h).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/common.h"
#include "embed/encoder.h"
#include "engine/decoder_embed.h"

namespace flashlm::cli {
namespace {

struct EmbedArgs {
  std::string model;
  std::vector<std::string> prompts;
  std::string file;
  int threads = 0;
  int batch = 0;  // 0: 32 for an encoder; a decoder runs one input at a time
  bool no_truncate = false;
  std::string pooling;  // decoder models: mean (default), last, cls, max, mean_sqrt_len
  DType kv_type = kDefaultKvType;
  bool kv_type_given = false;  // --kv-type is for decoders: refused with an encoder
};

void print_vector(const std::vector<float>& v) {
  std::string line = "[";
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof(buf), i == 0 ? "%.9g" : ",%.9g", static_cast<double>(v[i]));
    line += buf;
  }
  line += "]\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

// A GGUF decoder model: each input through the runner, its hidden states pooled.
int embed_decoder(const EmbedArgs& a, const std::vector<std::string>& texts) {
  if (a.batch > 1) {
    print_error("--batch applies to encoder model directories; a decoder model embeds one input at a time");
    return 1;
  }
  Result<embed::Pooling> pooling = embed::pooling_from_name(a.pooling.empty() ? "mean" : a.pooling);
  if (!pooling) {
    print_error(pooling.status().message());
    return 1;
  }
  CommonArgs c;
  c.model = a.model;
  c.threads = a.threads;
  c.kv_type = a.kv_type;
  std::unique_ptr<Loaded> l = load(c, LoadFor::kRunner);
  if (!l) return 1;
  const int64_t n_embd = l->model->config().n_embd;
  const int seq = l->runner->seq_new();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<float>> vectors;
  size_t truncated = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int32_t> ids = l->tok->encode(texts[i], /*add_special=*/true, /*parse_special=*/false);
    if (static_cast<int64_t>(ids.size()) > l->runner->n_ctx()) {
      if (a.no_truncate) {
        print_error("input " + std::to_string(i) + " has " + std::to_string(ids.size()) + " tokens, more than the " +
                    std::to_string(l->runner->n_ctx()) + "-token context (the model's, at most 4096)");
        return 1;
      }
      ids.resize(static_cast<size_t>(l->runner->n_ctx()));
      ++truncated;
    }
    Result<std::vector<float>> v = decoder_embed(*l->runner, seq, ids, *pooling, n_embd);
    if (!v) {
      print_error("input " + std::to_string(i) + ": " + v.status().message());
      return 1;
    }
    vectors.push_back(std::move(v).value());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (truncated > 0) std::fprintf(stderr, "note: %zu input(s) cut to the context\n", truncated);
  for (const std::vector<float>& v : vectors) print_vector(v);
  std::fprintf(stderr, "embed: %zu input(s), dim %lld, pooling %s + normalize (decoder), %.1f ms (%.1f inputs/s), threads %d\n",
               vectors.size(), static_cast<long long>(n_embd), a.pooling.empty() ? "mean" : a.pooling.c_str(), s * 1e3,
               static_cast<double>(vectors.size()) / s, l->n_threads);
  return 0;
}

int embed_cmd(const EmbedArgs& a) {
  std::vector<std::string> texts = a.prompts;
  if (!a.file.empty()) {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) {
      print_error("cannot open " + a.file);
      return 1;
    }
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      texts.push_back(line);
    }
  }
  if (texts.empty()) {
    print_error("nothing to embed: give -p TEXT or -f FILE");
    return 1;
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(a.model, ec)) return embed_decoder(a, texts);
  if (!a.pooling.empty() || a.kv_type_given) {
    print_error(std::string(a.pooling.empty() ? "--kv-type" : "--pooling") +
                " applies to decoder (GGUF) models; an encoder has no KV cache and takes its pooling from its "
                "sentence-transformers config");
    return 1;
  }
  const int batch = a.batch > 0 ? a.batch : 32;
  Result<embed::Encoder> enc = embed::Encoder::load(a.model);
  if (!enc) {
    print_error(enc.status().message());
    return 1;
  }
  const int n_threads = a.threads == 0 ? usable_cpu_count() : a.threads;
  note_thread_cap(n_threads);
  ThreadPool pool(n_threads);
  // Timed from here: tokenizing and the encoder, as sentence-transformers' encode() is
  // (loading before, printing after).
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<int32_t>> seqs;
  size_t truncated = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int32_t> ids = enc->tokenize(texts[i], /*truncate=*/false);
    if (static_cast<int64_t>(ids.size()) > enc->max_tokens()) {
      if (a.no_truncate) {
        print_error("input " + std::to_string(i) + " has " + std::to_string(ids.size()) + " tokens, more than the " +
                    std::to_string(enc->max_tokens()) + " this model takes (drop --no-truncate to cut it)");
        return 1;
      }
      ids = enc->cut(std::move(ids));
      ++truncated;
    }
    seqs.push_back(std::move(ids));
  }
  if (truncated > 0) {
    std::fprintf(stderr, "note: %zu input(s) cut to %lld tokens, as sentence-transformers cuts them\n", truncated,
                 static_cast<long long>(enc->max_tokens()));
  }
  std::vector<std::vector<float>> vectors;
  vectors.reserve(seqs.size());
  for (size_t b = 0; b < seqs.size(); b += static_cast<size_t>(batch)) {
    const size_t e = std::min(seqs.size(), b + static_cast<size_t>(batch));
    const std::vector<std::vector<int32_t>> part(seqs.begin() + static_cast<std::ptrdiff_t>(b),
                                                 seqs.begin() + static_cast<std::ptrdiff_t>(e));
    Result<std::vector<std::vector<float>>> out = enc->embed(part, pool);
    if (!out) {
      print_error(out.status().message());
      return 1;
    }
    for (std::vector<float>& v : *out) vectors.push_back(std::move(v));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const std::vector<float>& v : vectors) print_vector(v);
  std::fprintf(stderr, "embed: %zu input(s), dim %lld, pooling %s%s, %.1f ms (%.1f inputs/s), threads %d\n",
               seqs.size(), static_cast<long long>(enc->dim()), embed::pooling_name(enc->sentence().pooling),
               enc->sentence().normalize ? " + normalize" : "", s * 1e3, static_cast<double>(seqs.size()) / s,
               n_threads);
  return 0;
}

}  // namespace

void add_embed(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<EmbedArgs>();
  CLI::App* sub = app.add_subcommand("embed", "sentence embeddings as JSON arrays (encoder directory or GGUF decoder)");
  sub->add_option("-m,--model", args->model,
                  "Hugging Face encoder directory (config.json, tokenizer.json, *.safetensors; BERT-style), or a GGUF "
                  "decoder model (its pooled final hidden states, as llama.cpp's embedding mode)")
      ->required();
  sub->add_option("--pooling", args->pooling, "decoder models: mean (default), last, cls, max or mean_sqrt_len");
  add_kv_type_flag(sub, &args->kv_type);
  sub->add_option("-p,--prompt", args->prompts, "text to embed (repeatable)");
  sub->add_option("-f,--file", args->file, "file of texts to embed, one per line");
  sub->add_option("-t,--threads", args->threads, "threads (0: the CPUs this process may use)")->check(CLI::Range(0, 1024));
  sub->add_option("-b,--batch", args->batch, "encoder models: inputs per forward pass (default 32)")->check(CLI::Range(1, 4096));
  sub->add_flag("--no-truncate", args->no_truncate, "refuse inputs longer than the model takes instead of cutting them");
  sub->final_callback([args, exit_code, sub] {
    args->kv_type_given = sub->count("--kv-type") > 0;
    *exit_code = embed_cmd(*args);
  });
}

}  // namespace flashlm::cli
