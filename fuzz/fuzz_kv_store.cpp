// libFuzzer target: arbitrary bytes are a block file of the persistent KV store.
// Each input is tried twice: as given, and with its trailing checksum recomputed so that
// mutations of the header, tokens and payload get past the checksum and reach the size
// and field checks. A record that parses must re-encode to exactly the same bytes (the
// parser accepts nothing the writer would not write). Every 16th input also goes through
// the store itself: written under a block's name in a fresh store directory, reopened
// and read with get(), which must return the block only for a fully valid record.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "kv/kv_store.h"
#include "kv/kv_store_record.h"
#include "util/xxhash64.h"

using namespace flashlm;

namespace {

constexpr uint64_t kNs = 0x0123456789abcdefull;
volatile uint8_t g_sink;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_kv_store: %s\n", what);
  std::abort();
}

// Returns whether the bytes are a valid record; checks the round trip when they are.
bool check_parse(const std::vector<uint8_t>& b) {
  Result<KvRecordView> v = parse_kv_record(b);
  if (!v) {
    (void)v.message();
    return false;
  }
  const std::vector<int32_t> tokens = kv_record_tokens(*v);
  if (!v->payload.empty()) g_sink = v->payload.front() ^ v->payload.back();
  const std::vector<uint8_t> again = encode_kv_record(v->header, tokens, v->payload);
  if (again != b) fail("parsed record does not re-encode to the same bytes");
  return true;
}

// A plain char array, not a std::string: the atexit cleanup runs after static objects
// are destroyed.
char g_root[4096];

std::string store_root() {
  if (g_root[0] == 0) {
    const std::string t = (std::filesystem::temp_directory_path() / "fuzz_kv_store_XXXXXX").string();
    if (t.size() >= sizeof g_root) fail("temp path too long");
    std::memcpy(g_root, t.c_str(), t.size() + 1);
    if (::mkdtemp(g_root) == nullptr) fail("mkdtemp");
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(g_root, ec);
    });
  }
  return g_root;
}

void check_store(const std::vector<uint8_t>& b, bool valid) {
  uint64_t hash = 1;
  if (b.size() >= 32) std::memcpy(&hash, b.data() + 24, 8);  // the header's block hash
  uint64_t ns = kNs;
  if (b.size() >= 24) std::memcpy(&ns, b.data() + 16, 8);
  const std::string root = store_root();
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  char name[40];
  std::snprintf(name, sizeof name, "%016llx/%016llx.kvb", static_cast<unsigned long long>(kNs),
                static_cast<unsigned long long>(hash));
  const std::filesystem::path file = std::filesystem::path(root) / name;
  std::filesystem::create_directories(file.parent_path(), ec);
  if (FILE* f = std::fopen(file.c_str(), "wb")) {
    if (!b.empty()) std::fwrite(b.data(), 1, b.size(), f);
    std::fclose(f);
  }
  KvStoreOptions o;
  o.warn = [](const std::string&) {};
  Result<std::unique_ptr<KvStore>> s = KvStore::open(root, kNs, uint64_t{1} << 20, o);
  if (!s) fail("open failed on a writable directory");
  const std::optional<KvStoreBlock> got = (*s)->get(hash);
  const bool want = valid && ns == kNs;
  if (got.has_value() != want) fail("get() disagrees with the parser");
  if (got && (got->block_hash != hash || got->payload.size() + 4 * got->tokens.size() + 72 != b.size()))
    fail("get() returned another block");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static uint64_t n_inputs = 0;
  std::vector<uint8_t> b(data, data + size);  // exactly sized: ASan sees overreads
  bool valid = check_parse(b);
  if (size >= kKvRecordHeaderBytes + kKvRecordTrailerBytes) {
    const uint64_t sum = xxh64(b.data(), size - 8);
    std::memcpy(b.data() + size - 8, &sum, 8);
    valid = check_parse(b);
  }
  if (n_inputs++ % 16 == 0) check_store(b, valid);
  return 0;
}
