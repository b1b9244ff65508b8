// Anonymous memory on 2 MiB boundaries with transparent huge pages requested
// (MADV_HUGEPAGE), for data streamed end to end every token: model weights read at load
// and the bandwidth probe of `flashlm bench`. A decode step reads every weight once, and
// over 4 KiB pages scattered through the page cache the same kernels stream 15-25%
// slower than over physically contiguous memory (measured on a Zen 4 guest: Gemma 3's
// Q8_0 output matrix at 18 GB/s from the file's old page-cache pages, 22-23 GB/s from
// huge pages); fewer TLB entries and page walks per byte are the difference. Where the
// kernel gives no huge pages (THP off), the buffer is ordinary anonymous memory.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/status.h"

namespace flashlm {

class HugePageBuffer {
 public:
  HugePageBuffer() = default;
  ~HugePageBuffer();
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;
  HugePageBuffer(HugePageBuffer&& o) noexcept;
  HugePageBuffer& operator=(HugePageBuffer&& o) noexcept;

  // `bytes` writable bytes (zero-filled by the kernel); an error when the memory cannot
  // be mapped.
  static Result<HugePageBuffer> allocate(size_t bytes);

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Makes the buffer read-only, so a stray write faults as it would on a read-only map.
  void protect_read_only();

 private:
  void release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // bytes of the mapping (size_ rounded up to 2 MiB)
};

// The kernel's MemAvailable in bytes (/proc/meminfo), capped by what the cgroup v2 limit
// leaves (memory.max - memory.current) when there is one; 0 when it cannot be read.
uint64_t available_memory_bytes();

}  // namespace flashlm
