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

void sgemm(const SgemmArgs& g, ThreadPool& pool);
// The same product by the plain triple loop (double accumulation), for tests.
void sgemm_reference(const SgemmArgs& g);

}  // namespace flashlm
