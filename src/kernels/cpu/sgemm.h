// Single-precision GEMM for training (and anything else with F32 on both sides):
// C[M][N] = beta * C + op(A)[M][K] . op(B)[K][N], row-major with leading dimensions,
// op = as stored or transposed. Blocked and packed (BLIS's loop order: K panels of
// B and A packed into micro-panels, then an MR x NR register tile per micro-panel pair),
// with an AVX2/FMA tile where the CPU has it and a portable one elsewhere. Tiles are fixed
// by the shape, not the thread count, and each C element is summed in one order, so
// results do not depend on how many threads run.
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace flashlm {

struct SgemmArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* A = nullptr;
  int64_t lda = 0;
  bool trans_a = false;  // A stored [K][M] (lda >= M) instead of [M][K] (lda >= K)
  const float* B = nullptr;
  int64_t ldb = 0;
  bool trans_b = false;  // B stored [N][K] (ldb >= K) instead of [K][N] (ldb >= N)
  float* C = nullptr;
  int64_t ldc = 0;
  float beta = 0.0f;     // 0: C is overwritten (never read); 1: accumulated into
};

// What sgemm rounds its inputs to before multiplying; the products are summed in F32
// either way. BF16 (round to nearest even, as PyTorch's autocast) halves the packed
// operands, and on CPUs with AVX512_BF16 each instruction multiplies two pairs per lane
// (vdpbf16ps); elsewhere the same rounding runs on the F32 tile, slower than F32.
enum class SgemmInputs { kF32, kBf16 };

// The calling thread's setting (kF32 unless a scope says otherwise): training sets it
// for a run, so every matmul of the run's forward and backward follows it.
SgemmInputs sgemm_inputs();
class SgemmInputsScope {
 public:
  explicit SgemmInputsScope(SgemmInputs in);
  ~SgemmInputsScope();
  SgemmInputsScope(const SgemmInputsScope&) = delete;
  SgemmInputsScope& operator=(const SgemmInputsScope&) = delete;

 private:
  SgemmInputs saved_;
};
// True when BF16 inputs run on the CPU's own BF16 instructions (AVX512_BF16).
bool sgemm_bf16_native();

void sgemm(const SgemmArgs& g, ThreadPool& pool);
// The same product by the plain triple loop (double accumulation), for tests; with
// kBf16 the inputs are rounded as sgemm rounds them (util/fp16.h's fp32_to_bf16).
void sgemm_reference(const SgemmArgs& g, SgemmInputs in = SgemmInputs::kF32);

}  // namespace flashlm
