#include "train/write_model.h"

#include <memory>

#include "formats/gguf_writer.h"
#include "quant/quant.h"

namespace flashlm::train {

Status write_trained_model(const gguf::File& base, const std::vector<Param>& params, const std::vector<bool>& trained,
                           const std::string& out_type, const std::string& path) {
  if (out_type != "f32" && out_type != "f16" && out_type != "bf16" && out_type != "same") {
    return Status::error("unknown output type '" + out_type + "' (f32, f16, bf16, same)");
  }
  gguf::Writer w;
  w.copy_metadata(base);
  // Converted tensors must outlive the writer's write(): they are kept here.
  std::vector<std::unique_ptr<std::vector<uint8_t>>> bufs;
  for (const gguf::TensorInfo& t : base.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    size_t pi = 0;
    while (pi < params.size() && params[pi].name != t.name) ++pi;
    if (pi == params.size() || !trained[pi]) {
      if (Status st = w.add_tensor(t.name, t.dtype, ne, t.data); !st) return st;
      continue;
    }
    const Param& p = params[pi];
    DType type = out_type == "f16" ? DType::F16 : out_type == "bf16" ? DType::BF16 : DType::F32;
    if (out_type == "same") type = type_traits(t.dtype).from_float != nullptr ? t.dtype : DType::F32;
    if (t.n_dims == 1) type = DType::F32;  // norms and biases stay F32, as llama.cpp writes them
    if (type == DType::F32) {
      if (Status st = w.add_tensor(t.name, type, ne, p.w.data()); !st) return st;
      continue;
    }
    const TypeTraits& tt = type_traits(type);
    if (tt.from_float == nullptr || p.ne0 % tt.block_size != 0) {
      return Status::error("tensor '" + t.name + "' cannot be written as " + tt.name);
    }
    const size_t row = row_size(type, p.ne0);
    auto buf = std::make_unique<std::vector<uint8_t>>(static_cast<size_t>(p.ne1) * row);
    for (int64_t r = 0; r < p.ne1; ++r) tt.from_float(p.w.data() + r * p.ne0, buf->data() + r * row, p.ne0);
    if (Status st = w.add_tensor(t.name, type, ne, buf->data()); !st) return st;
    bufs.push_back(std::move(buf));
  }
  return w.write(path);
}

Status write_lora_adapter(const gguf::File& base, const TrainModel& m, const std::string& path) {
  Result<std::string> arch = base.get_string("general.architecture");
  if (!arch) return arch.status();
  gguf::Writer w;
  w.set("general.architecture", gguf::make_string(*arch));
  w.set("general.type", gguf::make_string("adapter"));
  w.set("adapter.type", gguf::make_string("lora"));
  w.set("adapter.lora.alpha", gguf::make_f32(m.lora_config().alpha));
  if (const gguf::Value* name = base.find("general.name")) w.set("general.name", *name);
  for (const Param& p : m.params()) {
    if (!is_lora_param(p.name)) continue;
    if (Status st = w.add_tensor(p.name, DType::F32, {p.ne0, p.ne1}, p.w.data()); !st) return st;
  }
  if (w.n_tensors() == 0) return Status::error("the model has no LoRA parameters to write");
  return w.write(path);
}

}  // namespace flashlm::train
