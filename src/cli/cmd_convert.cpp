// flashlm convert: a Hugging Face model directory written as a GGUF file (hf/hf_model.h),
// the file llama.cpp's convert_hf_to_gguf.py would write for it; the result is loaded
// back before the command succeeds.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "hf/hf_model.h"
#include "quant/quant.h"

namespace flashlm::cli {
namespace {

struct ConvertArgs {
  std::string dir, out, type = "auto";
};

Result<std::optional<DType>> parse_type(const std::string& s) {
  if (s == "auto") return std::optional<DType>();
  if (s == "f32" || s == "F32") return std::optional<DType>(DType::F32);
  if (s == "f16" || s == "F16") return std::optional<DType>(DType::F16);
  if (s == "bf16" || s == "BF16") return std::optional<DType>(DType::BF16);
  if (s == "q8_0" || s == "Q8_0") return std::optional<DType>(DType::Q8_0);
  return Status::error("unknown --type '" + s +
                       "' (auto, f32, f16, bf16 or q8_0; flashlm quantize takes the result to other types)");
}

int run_convert(const ConvertArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  Result<std::optional<DType>> type = parse_type(a.type);
  if (!type) {
    print_error(type.message());
    return 1;
  }
  if (!hf::is_model_dir(a.dir)) {
    print_error("'" + a.dir + "' is not a Hugging Face model directory (no config.json)");
    return 1;
  }
  Result<hf::HfModel> m = hf::HfModel::open(a.dir);
  if (!m) {
    print_error(m.message());
    return 1;
  }
  gguf::Writer w;
  if (Status st = m->to_gguf(hf::ConvertOptions{*type}, &w); !st) {
    print_error(st.message());
    return 1;
  }
  if (Status st = w.write(a.out); !st) {
    print_error(st.message());
    return 1;
  }
  // Loading it back checks the file is a whole model: every tensor, shape and
  // architecture key, and the tokenizer keys.
  Result<std::unique_ptr<Model>> back = Model::load(a.out, BackendKind::kCpu, {}, FileBacking::kMap);
  Status loaded = back ? Status::ok() : back.status();
  if (back) {
    if (Result<tok::Tokenizer> t = tok::Tokenizer::from_gguf((*back)->file()); !t) loaded = t.status();
  }
  if (!loaded) {
    std::filesystem::remove(a.out);
    print_error("the converted file does not load: " + loaded.message());
    return 1;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "convert: wrote '%s' (%s, %zu tensors, %s) in %.1f s\n", a.out.c_str(),
               m->arch().gguf_arch.c_str(), w.n_tensors(), a.type.c_str(), s);
  return 0;
}

}  // namespace

void add_convert(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* sub = app.add_subcommand("convert", "write a Hugging Face model directory as a GGUF file");
  sub->add_option("dir", args->dir, "model directory (config.json, *.safetensors, tokenizer.json)")->required();
  sub->add_option("-o,--output", args->out, "GGUF file to write")->required();
  sub->add_option("--type", args->type, "matrix type: auto (as stored), f32, f16, bf16 or q8_0");
  sub->callback([args, exit_code] { *exit_code = run_convert(*args); });
}

}  // namespace flashlm::cli
