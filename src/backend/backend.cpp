#include "backend/backend.h"

#include <string>

#include "backend/cpu_backend.h"
#include "backend/reference_backend.h"
#ifdef FLASHLM_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace flashlm {

const char* backend_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::kCpu: return "cpu";
    case BackendKind::kReference: return "reference";
    case BackendKind::kCuda: return "cuda";
  }
  return "unknown";
}

Result<BackendKind> backend_kind_from_name(std::string_view name) {
  for (BackendKind k : {BackendKind::kCpu, BackendKind::kReference, BackendKind::kCuda}) {
    if (name == backend_name(k)) return k;
  }
  return Status::error("unknown backend '" + std::string(name) + "' (expected cpu, reference or cuda)");
}

bool backend_compiled(BackendKind kind) {
#ifdef FLASHLM_HAVE_CUDA
  return true;
#else
  return kind != BackendKind::kCuda;
#endif
}

Result<std::unique_ptr<ComputeBackend>> make_backend(BackendKind kind) {
  switch (kind) {
    case BackendKind::kCpu: return make_cpu_backend();
    case BackendKind::kReference: return make_reference_backend();
    case BackendKind::kCuda:
#ifdef FLASHLM_HAVE_CUDA
      return make_cuda_backend();
#else
      return Status::error("backend 'cuda': this build has no CUDA (configure with -DFLASHLM_CUDA=ON and nvcc, "
                           "see scripts/install_nvcc.sh)");
#endif
  }
  return Status::error("unknown backend id " + std::to_string(static_cast<int>(kind)));
}

}  // namespace flashlm
