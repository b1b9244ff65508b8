#include "train/qat.h"

#include <filesystem>

#include "quant/quant.h"
#include "train/write_model.h"

namespace flashlm::train {

Result<std::vector<DType>> qat_types(const gguf::File& base, const std::vector<Param>& params,
                                     const factory::QuantType& to) {
  Result<std::vector<factory::TensorPlan>> plan = factory::plan_quantize(base, to, /*pure=*/false);
  if (!plan) return plan.status();
  std::vector<DType> types(params.size(), DType::F32);
  for (size_t i = 0; i < params.size(); ++i) {
    for (const factory::TensorPlan& p : *plan) {
      if (p.src->name != params[i].name) continue;
      const bool quantized = p.type != DType::F32 && p.type != DType::F16 && p.type != DType::BF16;
      // F16/BF16 choices (fallbacks) are near-lossless: trained in F32, written as planned.
      if (quantized) types[i] = p.type;
      break;
    }
  }
  return types;
}

std::vector<DType> qat_types_same(const gguf::File& base, const std::vector<Param>& params) {
  std::vector<DType> types(params.size(), DType::F32);
  for (size_t i = 0; i < params.size(); ++i) {
    const gguf::TensorInfo* t = base.find_tensor(params[i].name);
    if (t == nullptr) continue;
    const TypeTraits& tt = type_traits(t->dtype);
    if (tt.is_quantized && tt.from_float != nullptr && t->n_dims > 1) types[i] = t->dtype;
  }
  return types;
}

Status write_qat_model(const gguf::File& base, const std::vector<Param>& params, const std::vector<bool>& trained,
                       const factory::QuantType& to, const std::string& path) {
  const std::string tmp = path + ".f32.tmp";
  struct Remove {
    const std::string& p;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(p, ec);
    }
  } remove_tmp{tmp};
  if (Status st = write_trained_model(base, params, trained, "f32", tmp); !st) return st;
  Result<gguf::File> f32 = gguf::File::open(tmp);
  if (!f32) return f32.status();
  return factory::quantize_model(*f32, to, path, factory::QuantizeOptions{});
}

}  // namespace flashlm::train
