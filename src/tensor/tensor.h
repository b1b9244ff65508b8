// A non-owning view of a tensor: dtype, shape, byte strides, data, device. Passed by
// value. Memory is owned elsewhere (mmap of the model file, arenas, KV pools).
// Dimension 0 is the innermost (contiguous) one, as in GGUF: ne[0] = row length.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace flashlm {

enum class Device : uint8_t { kCpu = 0, kCuda = 1 };

struct TensorView {
  static constexpr int kMaxDims = 4;
  DType dtype = DType::F32;
  int n_dims = 0;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};  // elements per dimension
  std::array<size_t, kMaxDims> nb{0, 0, 0, 0};   // bytes between consecutive indices
  void* data = nullptr;
  Device device = Device::kCpu;

  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t nelements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  const uint8_t* row_ptr(int64_t i1, int64_t i2 = 0, int64_t i3 = 0) const {
    return static_cast<const uint8_t*>(data) + i1 * nb[1] + i2 * nb[2] + i3 * nb[3];
  }
  uint8_t* row_ptr_mut(int64_t i1, int64_t i2 = 0, int64_t i3 = 0) const {
    return static_cast<uint8_t*>(data) + i1 * nb[1] + i2 * nb[2] + i3 * nb[3];
  }
};

}  // namespace flashlm
