#include "kernels/cpu/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace flashlm {
namespace {

// About 20-60 microseconds of spinning: longer than the gap between two ops of a
// forward pass, far shorter than anything a person would notice on an idle machine.
constexpr int kSpinIterations = 1 << 14;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  const unsigned cores = std::thread::hardware_concurrency();
  spin_limit_ = cores != 0 && static_cast<unsigned>(n_threads_) > cores ? 0 : kSpinIterations;
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_start_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run_chunk(int index) {
  // Contiguous, balanced chunks: thread i gets [i*n/T, (i+1)*n/T).
  const int64_t b = n_ * index / n_threads_;
  const int64_t e = n_ * (index + 1) / n_threads_;
  if (b < e) task_(ctx_, b, e, index);
}

void ThreadPool::run(int64_t n, Task task, void* ctx) {
  task_ = task;
  ctx_ = ctx;
  n_ = n;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  // Taking the lock after the bump means a worker either sees the new generation when it
  // checks under the lock, or is already waiting and gets this notification.
  { std::lock_guard<std::mutex> lock(mu_); }
  cv_start_.notify_all();
  run_chunk(0);
  for (int spins = 0; spins < spin_limit_; ++spins) {
    if (pending_.load(std::memory_order_acquire) == 0) return;
    cpu_relax();
  }
  // A worker is late (descheduled, or more threads than cores): block rather than burn
  // the core it may need. The last worker notifies under the lock.
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spins = 0; gen == seen && spins < spin_limit_ && !stop_.load(std::memory_order_relaxed); ++spins) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_start_.wait(lock, [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
      if (stop_.load()) return;
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    run_chunk(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_one();
    }
  }
}

}  // namespace flashlm
