// The CPU backend: the vectorized kernels of kernels/cpu behind ComputeBackend, each op
// split across the context's thread pool as the forward pass did before the seam.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace flashlm {

std::unique_ptr<ComputeBackend> make_cpu_backend();

}  // namespace flashlm
