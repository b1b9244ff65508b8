// The reference backend: the scalar reference ops (matmul_reference with f32
// activations, ops::*_reference, ops::rope, attention_paged_ref, the traits table's
// conversions) behind ComputeBackend. Selectable with --backend reference; the end-to-end
// tests compare the CPU backend's logits against it. Work is still split across the
// thread pool by rows and items, which does not change any element's arithmetic.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace flashlm {

std::unique_ptr<ComputeBackend> make_reference_backend();

}  // namespace flashlm
