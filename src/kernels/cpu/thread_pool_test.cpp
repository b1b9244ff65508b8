// The pool covers [0, n) exactly once per call, across many back-to-back calls (the
// spin hand-off) and after workers have gone to sleep (the condition-variable path).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.h"

namespace flashlm {
namespace {

void check_cover(ThreadPool& pool, int64_t n) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
    ASSERT_GE(t, 0);
    ASSERT_LT(t, pool.size());
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of " << n;
}

TEST(ThreadPool, EveryIndexOnceAcrossManyCalls) {
  // 8 threads exceeds the cores of small machines: the no-spin path.
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 500; ++rep) check_cover(pool, 1 + rep % 37);
  }
}

TEST(ThreadPool, WakesAfterWorkersSleep) {
  ThreadPool pool(3);
  check_cover(pool, 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past the spin window
  check_cover(pool, 100);
  check_cover(pool, 0);
}

}  // namespace
}  // namespace flashlm
