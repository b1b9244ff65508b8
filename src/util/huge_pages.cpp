#include "util/huge_pages.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <cstdio>
#include <cstring>
#include <utility>

namespace flashlm {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}

HugePageBuffer::~HugePageBuffer() { release(); }

HugePageBuffer::HugePageBuffer(HugePageBuffer&& o) noexcept { *this = std::move(o); }

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
  }
  return *this;
}

void HugePageBuffer::release() {
  if (data_ != nullptr) munmap(data_, mapped_);
  data_ = nullptr;
  size_ = mapped_ = 0;
}

Result<HugePageBuffer> HugePageBuffer::allocate(size_t bytes) {
  if (bytes == 0) return Status::error("cannot allocate an empty huge-page buffer");
  if (bytes > SIZE_MAX - 2 * kHugePage) return Status::error("huge-page buffer size overflows");
  const size_t len = (bytes + kHugePage - 1) & ~(kHugePage - 1);
  // Over-allocate by one huge page, then trim the ends so the buffer starts on a 2 MiB
  // boundary: only aligned 2 MiB ranges can be backed by huge pages.
  void* raw = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    return Status::error("cannot map " + std::to_string(bytes) + " bytes of memory: " + std::strerror(errno));
  }
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHugePage - 1) & ~uintptr_t{kHugePage - 1};
  if (start > base) munmap(raw, start - base);
  const size_t tail = (base + len + kHugePage) - (start + len);
  if (tail > 0) munmap(reinterpret_cast<void*>(start + len), tail);
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(start), len, MADV_HUGEPAGE);  // a hint: THP may be off
#endif
  HugePageBuffer b;
  b.data_ = reinterpret_cast<uint8_t*>(start);
  b.size_ = bytes;
  b.mapped_ = len;
  return b;
}

void HugePageBuffer::protect_read_only() {
  if (data_ != nullptr) mprotect(data_, mapped_, PROT_READ);
}

namespace {

// The first unsigned number in a file, or nullopt (absent, unreadable, or "max").
std::optional<uint64_t> read_number(const char* path) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return std::nullopt;
  unsigned long long v = 0;
  const bool ok = std::fscanf(f, "%llu", &v) == 1;
  std::fclose(f);
  return ok ? std::optional<uint64_t>(v) : std::nullopt;
}

}  // namespace

uint64_t available_memory_bytes() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
  }
  std::fclose(f);
  uint64_t avail = static_cast<uint64_t>(kib) * 1024;
  // In a container the cgroup's limit binds first (v2, as the thread pool reads cpu.max).
  const std::optional<uint64_t> limit = read_number("/sys/fs/cgroup/memory.max");
  const std::optional<uint64_t> used = read_number("/sys/fs/cgroup/memory.current");
  if (limit && used) avail = std::min(avail, *limit > *used ? *limit - *used : 0);
  return avail;
}

}  // namespace flashlm
