// libFuzzer target: arbitrary bytes are an imatrix file (quantize --imatrix). The legacy
// form is parsed directly; a GGUF-looking input goes through the GGUF reader and the
// imatrix checks. An accepted file must give every entry's importance without reading
// out of bounds, and the legacy form must write back and parse to the same entries.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "factory/imatrix.h"

using namespace flashlm;

namespace {

volatile float g_sink;

void use(const factory::Imatrix& m) {
  for (const auto& [name, e] : m.entries) {
    const auto n = static_cast<int64_t>(e.sums.size());
    const int64_t n_mat = m.legacy ? 1 : static_cast<int64_t>(e.counts.size());
    if (n_mat == 0 || n % n_mat != 0) continue;
    Result<std::vector<float>> w = m.importance(name, n / n_mat, n_mat);
    if (!w || w->size() != e.sums.size()) std::abort();  // the size was given as the entry's own
    if (!w->empty()) g_sink = (*w)[0];
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  Result<factory::Imatrix> m = factory::parse_imatrix_legacy(bytes);
  if (m) {
    use(*m);
    const std::string path = "/tmp/fuzz_imatrix_" + std::to_string(getpid()) + ".dat";
    if (!factory::save_imatrix(path, *m, true)) std::abort();
    Result<factory::Imatrix> again = factory::load_imatrix(path);
    std::remove(path.c_str());
    if (!again || again->entries.size() != m->entries.size()) std::abort();
  }
  if (size >= 4 && data[0] == 'G' && data[1] == 'G' && data[2] == 'U' && data[3] == 'F') {
    const std::string path = "/tmp/fuzz_imatrix_" + std::to_string(getpid()) + ".gguf";
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    Result<factory::Imatrix> g = factory::load_imatrix(path);
    std::remove(path.c_str());
    if (g) use(*g);
  }
  return 0;
}
