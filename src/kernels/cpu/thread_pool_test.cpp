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

// Chunk i always gets the same range, whichever thread claims it: per-chunk scratch and
// fixed summation orders stay valid with claimed chunks.
TEST(ThreadPool, ChunkIndexSelectsAFixedRange) {
  for (int threads : {2, 3, 16}) {
    ThreadPool pool(threads);
    for (int64_t n : {2, 5, 16, 101}) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(threads));
      pool.parallel_for(n, [&](int64_t b, int64_t e, int chunk) {
        EXPECT_EQ(b, n * chunk / threads);
        EXPECT_EQ(e, n * (chunk + 1) / threads);
        seen[static_cast<size_t>(chunk)].fetch_add(1);
      });
      for (int c = 0; c < threads; ++c) {
        const bool nonempty = n * c / threads < n * (c + 1) / threads;
        EXPECT_EQ(seen[static_cast<size_t>(c)].load(), nonempty ? 1 : 0) << "chunk " << c << " n " << n;
      }
    }
  }
}

// More chunks than CPUs, while as many busy threads as there are CPUs compete for them
// (a noisy neighbour, two servers on one machine): every op still covers its range once,
// in bounded time, and no late worker runs an older op's task (the sanitizers watch).
TEST(ThreadPool, OversubscribedPoolStaysCorrect) {
  const int cpus = usable_cpu_count();
  ASSERT_GE(cpus, 1);
  std::atomic<bool> quit{false};
  std::vector<std::thread> hogs;
  for (int i = 0; i < cpus; ++i) {
    hogs.emplace_back([&] {
      while (!quit.load(std::memory_order_relaxed)) {
      }
    });
  }
  ThreadPool pool(4 * cpus + 1);
  const auto t0 = std::chrono::steady_clock::now();
  for (int rep = 0; rep < 2000; ++rep) check_cover(pool, 1 + (rep * 7919) % 257);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  quit.store(true);
  for (auto& h : hogs) h.join();
  // Not a timing test: a bound a hundredfold above the usual tens of milliseconds, to
  // catch an op that waits for a sleeping thread's timeslice again and again.
  EXPECT_LT(sec, 30.0);
}

}  // namespace
}  // namespace flashlm
