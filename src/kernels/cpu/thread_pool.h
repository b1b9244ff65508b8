// A persistent pool of worker threads for data-parallel ops. Workers are created once;
// each op is one parallel_for that splits [0, n) into contiguous chunks, one per thread.
// Ops follow each other within microseconds during a forward pass, so workers spin on
// an atomic generation counter for a short while before sleeping on a condition
// variable, and the caller spins on a pending counter: no syscall per op in the hot loop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace flashlm {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over a partition of [0, n) and waits for all.
  template <typename Fn>
  void parallel_for(int64_t n, Fn&& fn) {
    if (n <= 0) return;
    if (n_threads_ == 1 || n == 1) {
      fn(int64_t{0}, n, 0);
      return;
    }
    run(n, [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<Fn*>(ctx))(b, e, t); }, &fn);
  }

 private:
  using Task = void (*)(void* ctx, int64_t begin, int64_t end, int thread);
  void run(int64_t n, Task task, void* ctx);
  void worker(int index);
  void run_chunk(int index);

  int n_threads_;
  int spin_limit_;  // 0 when there are more threads than cores: spinning would starve
  std::vector<std::thread> threads_;
  std::mutex mu_;                    // guards sleeping only
  std::condition_variable cv_start_;
  std::condition_variable cv_done_;
  std::atomic<uint64_t> generation_{0};  // bumped (release) after task_/ctx_/n_ are set
  std::atomic<int> pending_{0};          // workers still running the current op
  std::atomic<bool> stop_{false};
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace flashlm
