#include "backend/cuda/cuda_backend.h"

#include <string>

#include "backend/cuda/cuda_probe.h"

namespace flashlm {

Result<std::unique_ptr<ComputeBackend>> make_cuda_backend() {
  const cuda::CudaProbe p = cuda::probe();
  const std::string runtime =
      std::to_string(p.runtime_version / 1000) + "." + std::to_string(p.runtime_version % 1000 / 10);
  const std::string devices =
      p.driver_ok ? std::to_string(p.device_count) + " device(s) visible" : "no CUDA driver or device";
  return Status::error("backend 'cuda': kernels not implemented yet (built with CUDA runtime " + runtime + ", " +
                       devices + "); use --backend cpu");
}

}  // namespace flashlm
