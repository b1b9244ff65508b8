#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

namespace flashlm {
namespace {

// About 20-60 microseconds of spinning: longer than the gap between two ops of a
// forward pass, far shorter than anything a person would notice on an idle machine.
constexpr int kSpinIterations = 1 << 14;
constexpr uint64_t kChunkMask = 0xffffffffu;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// The cgroup v2 quota ("max 100000" or "200000 100000" in cpu.max), rounded up; 0 if none.
int cgroup_cpu_quota() {
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (!(f >> quota >> period) || quota == "max" || period <= 0) return 0;
  const double q = std::strtod(quota.c_str(), nullptr);
  return q > 0 ? static_cast<int>(std::ceil(q / period)) : 0;
}

}  // namespace

int usable_cpu_count() {
  int n = 0;
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
#endif
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  const int quota = cgroup_cpu_quota();
  if (quota > 0 && (n <= 0 || quota < n)) n = quota;
  return std::max(1, n);
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  const int started = std::min(n_threads_, usable_cpu_count());
  for (int i = 1; i < started; ++i) threads_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_start_.notify_all();
  for (auto& t : threads_) t.join();
}

bool ThreadPool::claim_and_run(uint32_t generation) {
  bool finished_last = false;
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(c >> 32) != generation || (c & kChunkMask) >= static_cast<uint64_t>(n_threads_)) {
      return finished_last;
    }
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    // The op cannot complete before this chunk does, so task_/ctx_/n_ are still its own.
    const int chunk = static_cast<int>(c & kChunkMask);
    const int64_t b = n_ * chunk / n_threads_;
    const int64_t e = n_ * (chunk + 1) / n_threads_;
    if (b < e) task_(ctx_, b, e, chunk);
    finished_last = done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_threads_;
    c = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(int64_t n, Task task, void* ctx) {
  task_ = task;
  ctx_ = ctx;
  n_ = n;
  done_.store(0, std::memory_order_relaxed);
  ++generation_;
  claim_.store(static_cast<uint64_t>(generation_) << 32, std::memory_order_release);
  // Taking the lock after the bump means a worker either sees the new generation when it
  // checks under the lock, or is already waiting and gets this notification.
  { std::lock_guard<std::mutex> lock(mu_); }
  cv_start_.notify_all();
  if (claim_and_run(generation_)) return;
  for (int spins = 0; spins < kSpinIterations; ++spins) {
    if (done_.load(std::memory_order_acquire) == n_threads_) return;
    cpu_relax();
  }
  // A claimed chunk is still running on a descheduled worker: block rather than burn the
  // core it may need. The worker that finishes the last chunk notifies under the lock.
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [this] { return done_.load(std::memory_order_acquire) == n_threads_; });
}

void ThreadPool::worker() {
  uint32_t seen = 0;
  for (;;) {
    auto generation = [this] { return static_cast<uint32_t>(claim_.load(std::memory_order_acquire) >> 32); };
    uint32_t gen = generation();
    for (int spins = 0; gen == seen && spins < kSpinIterations && !stop_.load(std::memory_order_relaxed); ++spins) {
      cpu_relax();
      gen = generation();
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_start_.wait(lock, [&] { return stop_.load() || generation() != seen; });
      if (stop_.load()) return;
      gen = generation();
    }
    seen = gen;
    if (claim_and_run(gen)) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_one();
    }
  }
}

}  // namespace flashlm
