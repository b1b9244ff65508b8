// Replaces the global operator new/delete of a TEST binary to count allocations and
// record the largest request. Include from exactly one translation unit of a test
// binary. The whole unaligned family is replaced so every new/delete pair stays matched
// (the sanitizers check that); the aligned forms keep the library's own pair.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

namespace flashlm::testing_alloc {
inline std::atomic<long> n_new{0};          // every allocation
inline std::atomic<size_t> largest{0};      // largest request since the last reset
inline void reset_largest() { largest.store(0); }

inline void* tracked_alloc(std::size_t n) {
  n_new.fetch_add(1, std::memory_order_relaxed);
  size_t cur = largest.load(std::memory_order_relaxed);
  while (n > cur && !largest.compare_exchange_weak(cur, n)) {
  }
  return std::malloc(n ? n : 1);
}
}  // namespace flashlm::testing_alloc

// Out of line: inlined, GCC warns (-Wmismatched-new-delete) that free() receives a
// pointer from operator new, which is exactly what is intended here.
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (void* p = flashlm::testing_alloc::tracked_alloc(n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t n) { return operator new(n); }
[[gnu::noinline]] void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return flashlm::testing_alloc::tracked_alloc(n);
}
[[gnu::noinline]] void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return flashlm::testing_alloc::tracked_alloc(n);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
