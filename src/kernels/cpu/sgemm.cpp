#include "kernels/cpu/sgemm.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/sgemm_tile.h"

namespace flashlm {
namespace {

using sgemm_tile::kMR;
using sgemm_tile::kNR;

// Block sizes: a packed B block (kKC x kNC) stays in L2 while the A micro-panels
// (kMR x kKC, a few KiB) stream through L1.
constexpr int64_t kMC = 16 * kMR;
constexpr int64_t kNC = 16 * kNR;
constexpr int64_t kKC = 256;

float a_at(const SgemmArgs& g, int64_t i, int64_t k) { return g.trans_a ? g.A[k * g.lda + i] : g.A[i * g.lda + k]; }
float b_at(const SgemmArgs& g, int64_t k, int64_t j) { return g.trans_b ? g.B[j * g.ldb + k] : g.B[k * g.ldb + j]; }

// One micro-panel of `width` lanes (of `lanes`) over depth kc: lane l at step k is
// src[l * l_stride + k * k_stride]; lanes past width are zero. The loop runs along
// whichever stride is 1, so both layouts read memory in order.
void pack_panel(const float* src, int64_t l_stride, int64_t k_stride, int64_t width, int64_t lanes, int64_t kc,
                float* dst) {
  if (width < lanes) std::fill(dst, dst + kc * lanes, 0.0f);
  if (k_stride == 1) {
    for (int64_t l = 0; l < width; ++l) {
      const float* s = src + l * l_stride;
      for (int64_t k = 0; k < kc; ++k) dst[k * lanes + l] = s[k];
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    const float* s = src + k * k_stride;
    for (int64_t l = 0; l < width; ++l) dst[k * lanes + l] = s[l * l_stride];
  }
}

// Rows [i0, i0 + mc) x depth [k0, k0 + kc) of op(A) as kMR-row micro-panels.
void pack_a(const SgemmArgs& g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  for (int64_t p = 0; p < mc; p += kMR, dst += kMR * kc) {
    const float* src = g.trans_a ? g.A + k0 * g.lda + i0 + p : g.A + (i0 + p) * g.lda + k0;
    pack_panel(src, g.trans_a ? 1 : g.lda, g.trans_a ? g.lda : 1, std::min(kMR, mc - p), kMR, kc, dst);
  }
}

// Depth [k0, k0 + kc) x columns [j0, j0 + nc) of op(B) as kNR-column micro-panels.
void pack_b(const SgemmArgs& g, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  for (int64_t p = 0; p < nc; p += kNR, dst += kNR * kc) {
    const float* src = g.trans_b ? g.B + (j0 + p) * g.ldb + k0 : g.B + k0 * g.ldb + j0 + p;
    pack_panel(src, g.trans_b ? g.ldb : 1, g.trans_b ? 1 : g.ldb, std::min(kNR, nc - p), kNR, kc, dst);
  }
}

// The portable tile: the compiler vectorizes the j loop.
void tile_generic(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  float acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int64_t r = 0; r < kMR; ++r) {
      for (int64_t j = 0; j < kNR; ++j) acc[r][j] += a[k * kMR + r] * b[k * kNR + j];
    }
  }
  for (int64_t r = 0; r < kMR; ++r) {
    for (int64_t j = 0; j < kNR; ++j) c[r * ldc + j] = accumulate ? c[r * ldc + j] + acc[r][j] : acc[r][j];
  }
}

sgemm_tile::TileFn pick_tile() {
#if defined(FLASHLM_HAVE_AVX2)
  if (cpu_has_avx2()) return &sgemm_tile::tile_avx2;
#endif
  return &tile_generic;
}

}  // namespace

void sgemm(const SgemmArgs& g, ThreadPool& pool) {
  if (g.M <= 0 || g.N <= 0) return;
  static const sgemm_tile::TileFn tile = pick_tile();
  const int64_t mb = (g.M + kMC - 1) / kMC;
  const int64_t nb = (g.N + kNC - 1) / kNC;
  if (g.K <= 0) {  // an empty sum: C = beta * C
    for (int64_t i = 0; i < g.M; ++i) {
      for (int64_t j = 0; j < g.N; ++j) g.C[i * g.ldc + j] = g.beta == 0.0f ? 0.0f : g.beta * g.C[i * g.ldc + j];
    }
    return;
  }
  pool.parallel_for(mb * nb, [&](int64_t tb, int64_t te, int) {
    thread_local std::vector<float> pa, pb;
    pa.resize(static_cast<size_t>(kMC * kKC));
    pb.resize(static_cast<size_t>(kKC * kNC));
    float edge[kMR * kNR];
    for (int64_t t = tb; t < te; ++t) {
      const int64_t i0 = (t / nb) * kMC, j0 = (t % nb) * kNC;
      const int64_t mc = std::min(kMC, g.M - i0), nc = std::min(kNC, g.N - j0);
      for (int64_t k0 = 0; k0 < g.K; k0 += kKC) {
        const int64_t kc = std::min(kKC, g.K - k0);
        // The first K block applies beta: overwrite (beta 0) or accumulate; later ones add.
        const bool accumulate = k0 > 0 || g.beta != 0.0f;
        if (k0 == 0 && g.beta != 0.0f && g.beta != 1.0f) {
          for (int64_t i = 0; i < mc; ++i) {
            for (int64_t j = 0; j < nc; ++j) g.C[(i0 + i) * g.ldc + j0 + j] *= g.beta;
          }
        }
        pack_a(g, i0, mc, k0, kc, pa.data());
        pack_b(g, k0, kc, j0, nc, pb.data());
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            const float* a = pa.data() + ir * kc;
            const float* b = pb.data() + jr * kc;
            float* c = g.C + (i0 + ir) * g.ldc + j0 + jr;
            const int64_t h = std::min(kMR, mc - ir), w = std::min(kNR, nc - jr);
            if (h == kMR && w == kNR) {
              tile(kc, a, b, c, g.ldc, accumulate);
              continue;
            }
            // An edge tile: computed whole into a buffer, its valid part added.
            tile(kc, a, b, edge, kNR, false);
            for (int64_t r = 0; r < h; ++r) {
              for (int64_t j = 0; j < w; ++j) {
                float& dst = c[r * g.ldc + j];
                dst = accumulate ? dst + edge[r * kNR + j] : edge[r * kNR + j];
              }
            }
          }
        }
      }
    }
  });
}

void sgemm_reference(const SgemmArgs& g) {
  for (int64_t i = 0; i < g.M; ++i) {
    for (int64_t j = 0; j < g.N; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < g.K; ++k) s += static_cast<double>(a_at(g, i, k)) * b_at(g, k, j);
      float& c = g.C[i * g.ldc + j];
      c = static_cast<float>(s + (g.beta == 0.0f ? 0.0 : static_cast<double>(g.beta) * c));
    }
  }
}

}  // namespace flashlm
