// The CUDA backend's entry point, compiled only with -DFLASHLM_CUDA=ON. Its kernels are
// not written yet: make_cuda_backend reports that (with what the CUDA runtime sees), so
// `--backend cuda` fails with a clear error instead of running anything.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace flashlm {

Result<std::unique_ptr<ComputeBackend>> make_cuda_backend();

}  // namespace flashlm
