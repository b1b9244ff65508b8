// The traits table: one entry per supported GGUF type id, built at compile time.
#include "quant/quant.h"

#include <array>
#include <cstdint>

#include "quant/quant_ref.h"

namespace flashlm {

namespace {

using namespace quant;

template <typename Block>
constexpr TypeTraits block_traits(const char* name, FromFloatFn from_float) {
  TypeTraits t;
  t.name = name;
  t.block_size = Block::kElems;
  t.type_size = sizeof(Block);
  t.is_quantized = true;
  t.to_float = &dequantize_row<Block>;
  t.from_float = from_float;
  t.dot_f32 = &dot_row<Block>;
  return t;
}

constexpr TypeTraits float_traits(const char* name, size_t bytes, ToFloatFn to, FromFloatFn from,
                                  DotF32Fn dot) {
  TypeTraits t;
  t.name = name;
  t.block_size = 1;
  t.type_size = bytes;
  t.is_quantized = false;
  t.to_float = to;
  t.from_float = from;
  t.dot_f32 = dot;
  return t;
}

constexpr void set(std::array<TypeTraits, kDTypeIdLimit>& table, DType t, const TypeTraits& tr) {
  table[static_cast<uint32_t>(t)] = tr;
}

// Names are ggml's (ggml_type_name), so `flashlm info` reads like llama.cpp's output.
constexpr std::array<TypeTraits, kDTypeIdLimit> make_table() {
  std::array<TypeTraits, kDTypeIdLimit> t{};
  set(t, DType::F32, float_traits("f32", 4, f32_to_float, f32_from_float, f32_dot));
  set(t, DType::F16, float_traits("f16", 2, f16_to_float, f16_from_float, f16_dot));
  set(t, DType::BF16, float_traits("bf16", 2, bf16_to_float, bf16_from_float, bf16_dot));
  set(t, DType::Q4_0, block_traits<BlockQ4_0>("q4_0", &quantize_row<BlockQ4_0>));
  set(t, DType::Q4_1, block_traits<BlockQ4_1>("q4_1", &quantize_row<BlockQ4_1>));
  set(t, DType::Q5_0, block_traits<BlockQ5_0>("q5_0", &quantize_row<BlockQ5_0>));
  set(t, DType::Q5_1, block_traits<BlockQ5_1>("q5_1", &quantize_row<BlockQ5_1>));
  set(t, DType::Q8_0, block_traits<BlockQ8_0>("q8_0", &quantize_row<BlockQ8_0>));
  set(t, DType::Q2_K, block_traits<BlockQ2_K>("q2_K", &quantize_row<BlockQ2_K>));
  set(t, DType::Q3_K, block_traits<BlockQ3_K>("q3_K", &quantize_row<BlockQ3_K>));
  set(t, DType::Q4_K, block_traits<BlockQ4_K>("q4_K", &quantize_row<BlockQ4_K>));
  set(t, DType::Q5_K, block_traits<BlockQ5_K>("q5_K", &quantize_row<BlockQ5_K>));
  set(t, DType::Q6_K, block_traits<BlockQ6_K>("q6_K", &quantize_row<BlockQ6_K>));
  set(t, DType::Q8_K, block_traits<BlockQ8_K>("q8_K", &quantize_row<BlockQ8_K>));
  return t;
}

constexpr std::array<TypeTraits, kDTypeIdLimit> kTable = make_table();
constexpr TypeTraits kUnsupported{};

}  // namespace

const TypeTraits& type_traits(uint32_t type_id) {
  return type_id < kDTypeIdLimit ? kTable[type_id] : kUnsupported;
}

size_t row_size(DType t, int64_t n) {
  const TypeTraits& tr = type_traits(t);
  if (tr.name == nullptr || n < 0 || n % tr.block_size != 0) return 0;
  const uint64_t blocks = (uint64_t)(n / tr.block_size);
  if (blocks > SIZE_MAX / tr.type_size) return 0;  // a corrupt shape must not wrap around
  return (size_t)blocks * tr.type_size;
}

}  // namespace flashlm
