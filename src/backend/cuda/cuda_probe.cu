// The nvcc-compiled part of the CUDA backend skeleton: a runtime probe, and the first
// device kernel (scale), which proves the toolchain builds and links device code. The
// backend's ops will live beside it.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_probe.h"

namespace flashlm::cuda {

__global__ void scale_kernel(float* x, float s, long long n) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

// Not called yet: the first op the backend will implement (ops::scale on device memory).
cudaError_t scale_on_device(float* x, float s, long long n, cudaStream_t stream) {
  const int threads = 256;
  const auto blocks = static_cast<unsigned>((n + threads - 1) / threads);
  scale_kernel<<<blocks, threads, 0, stream>>>(x, s, n);
  return cudaGetLastError();
}

CudaProbe probe() {
  CudaProbe p;
  p.runtime_version = CUDART_VERSION;
  int n = 0;
  // Without a driver (CI, most build machines) this returns an error code; nothing aborts.
  p.driver_ok = cudaGetDeviceCount(&n) == cudaSuccess;
  p.device_count = p.driver_ok ? n : 0;
  return p;
}

}  // namespace flashlm::cuda
