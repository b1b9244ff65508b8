// What the CUDA runtime reports, from the one translation unit nvcc compiles
// (cuda_probe.cu). Plain types only, so the host compiler's sources need no CUDA header.
#pragma once

namespace flashlm::cuda {

struct CudaProbe {
  int runtime_version = 0;  // CUDART_VERSION the code was built with, e.g. 12090
  int device_count = 0;     // devices visible now (0 without a driver or GPU)
  bool driver_ok = false;   // cudaGetDeviceCount succeeded
};

CudaProbe probe();

}  // namespace flashlm::cuda
