// libFuzzer target: arbitrary bytes -> GGUF parse. When the parse succeeds, everything a
// loader would do next runs too: metadata rendering and typed getters, the model config
// and weight table, and a read of every tensor's first and last byte plus a dequantized
// first row, so any view that points outside the (exactly sized) buffer trips ASan.
// The tokenizer is built from the same metadata and, when that succeeds, encodes and
// decodes a fixed text, since vocabulary arrays are the other big hostile input.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "formats/gguf.h"
#include "models/registry.h"
#include "models/weights.h"
#include "quant/quant.h"
#include "tokenizer/tokenizer.h"
#include "util/mapped_file.h"

using namespace flashlm;

namespace {

// Keeps reads from being optimised away.
volatile uint8_t g_sink_u8;
volatile float g_sink_f32;

void touch_metadata(const gguf::File& f) {
  for (const auto& [key, v] : f.metadata()) {
    (void)v.to_string();
    (void)f.get_int(key);
    (void)f.get_float(key);
    (void)f.get_bool(key);
    (void)f.get_string(key);
    (void)f.get_array(key, gguf::ValueType::kString);
    (void)f.get_array(key, gguf::ValueType::kInt32);
  }
}

void touch_tensors(const gguf::File& f) {
  std::vector<float> row;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const TensorView v = t.view();
    (void)v.nelements();
    if (t.size_bytes == 0) continue;
    g_sink_u8 = t.data[0];
    g_sink_u8 = t.data[t.size_bytes - 1];
    const TypeTraits& tt = type_traits(t.dtype);
    // One row through the reference dequantizer: its bytes must be inside the tensor.
    if (tt.to_float != nullptr && t.ne[0] <= (int64_t{1} << 16) && row_size(t.dtype, t.ne[0]) <= t.size_bytes) {
      row.resize(static_cast<size_t>(t.ne[0]));
      tt.to_float(t.data, row.data(), t.ne[0]);
      g_sink_f32 = row[0];
    }
  }
}

void touch_tokenizer(const gguf::File& f) {
  Result<tok::Tokenizer> t = tok::Tokenizer::from_gguf(f);
  if (!t) return;
  static const char kText[] = "hi <s> Hello, world!\n\xe2\x96\x81 \xff caf\xc3\xa9 123 <|endoftext|>";
  for (bool special : {false, true}) {
    std::vector<int32_t> ids = t->encode(kText, special, special);
    (void)t->decode(ids, special);
  }
  // Every id, including out-of-range ones at the edges, must be safe to render.
  const int32_t n = t->n_vocab();
  for (int32_t id = -1; id <= n && id < 4096; ++id) (void)t->token_to_piece(id, true);
  (void)t->token_to_piece(n, false);
  (void)t->is_eog(t->eos());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Result<gguf::File> f = gguf::File::parse(MappedFile::from_bytes(data, size));
  if (!f) {
    (void)f.message();
    return 0;
  }
  touch_metadata(*f);
  touch_tensors(*f);
  touch_tokenizer(*f);
  Result<ModelConfig> cfg = parse_model_config(*f);
  if (cfg) {
    (void)cfg->max_head_dim();
    (void)cfg->max_kv_dim();
    Result<ModelWeights> w = load_decoder_weights(*f, *cfg);
    (void)w.is_ok();
  }
  return 0;
}
