// libFuzzer target: arbitrary bytes -> safetensors parse. When the parse succeeds, every
// tensor's first and last byte is read and the F32/F16/BF16 ones are converted, so a view
// that points outside the (exactly sized) buffer trips ASan.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "formats/safetensors.h"
#include "util/mapped_file.h"

using namespace flashlm;

namespace {
volatile uint8_t g_sink_u8;
volatile float g_sink_f32;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Result<safetensors::File> f = safetensors::File::parse(MappedFile::from_bytes(data, size));
  if (!f) {
    if (f.message().empty()) std::abort();  // a refusal always says why
    return 0;
  }
  for (const safetensors::TensorInfo& t : f->tensors()) {
    if (t.end > t.begin) g_sink_u8 = static_cast<uint8_t>(t.data[0] ^ t.data[t.end - t.begin - 1]);
    if (t.supported && t.nelements() <= (1 << 16)) {
      Result<std::vector<float>> v = f->to_f32(t.name);
      if (!v || static_cast<int64_t>(v->size()) != t.nelements()) std::abort();
      if (!v->empty()) g_sink_f32 = (*v)[0];
    }
  }
  return 0;
}
