// A persistent pool of worker threads for data-parallel ops. Workers are created once;
// each op is one parallel_for that splits [0, n) into one contiguous chunk per thread.
//
// Chunks are claimed, not assigned: the caller and every awake worker take the next
// unclaimed chunk from one atomic word until none is left. Chunk i always covers the same
// range and is passed the index i, so results do not depend on which thread ran it, but
// a worker that the OS has descheduled (more threads than cores, a CPU quota, a noisy
// neighbour) no longer holds the op up: the others run its chunk. Ops follow each other
// within microseconds during a forward pass, so workers spin on the word for a short
// while before sleeping on a condition variable; no syscall per op in the hot loop.
//
// A pool of more threads than usable CPUs starts only as many threads as there are CPUs
// and still splits every op into size() chunks: extra threads would only take turns on
// the same cores, and each turn (a futex wake, a context switch, a chunk held up by a
// preempted thread) costs more than a decode op does (4x slower decode at 8 threads on
// 2 CPUs, docs/BENCHMARKS.md).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace flashlm {

// CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota
// (a container's --cpus or a Kubernetes limit). The default thread count; never 0.
int usable_cpu_count();

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, chunk) for chunk = 0 .. size()-1 over [chunk*n/size,
  // (chunk+1)*n/size) (empty chunks skipped; n == 1 is one call with chunk 0) and waits
  // for all. A chunk index is in use by one call at a time, so it may select scratch.
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
  using Task = void (*)(void* ctx, int64_t begin, int64_t end, int chunk);
  void run(int64_t n, Task task, void* ctx);
  void worker();
  // Runs chunks of op `generation` until none is left; true if it finished the op's last.
  bool claim_and_run(uint32_t generation);

  int n_threads_;  // chunks per op
  std::vector<std::thread> threads_;
  std::mutex mu_;                    // guards sleeping only
  std::condition_variable cv_start_;
  std::condition_variable cv_done_;
  // (generation << 32) | next unclaimed chunk. Bumped (release) after task_/ctx_/n_ are
  // set; a claim is a compare-exchange that fails once the generation has moved on, so a
  // late worker can never take a chunk of a newer op under an older one's task.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_{0};  // chunks of the current op finished
  std::atomic<bool> stop_{false};
  uint32_t generation_ = 0;  // the caller's copy
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace flashlm
