#include "kernels/cpu/sgemm.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/sgemm_tile.h"
#include "util/fp16.h"

namespace flashlm {
namespace {

using sgemm_tile::kMR;

thread_local SgemmInputs t_inputs = SgemmInputs::kF32;

float a_at(const SgemmArgs& g, int64_t i, int64_t k) { return g.trans_a ? g.A[k * g.lda + i] : g.A[i * g.lda + k]; }
float b_at(const SgemmArgs& g, int64_t k, int64_t j) { return g.trans_b ? g.B[j * g.ldb + k] : g.B[k * g.ldb + j]; }

#if defined(FLASHLM_HAVE_AVX2)
bool use_avx2() {
  static const bool yes = cpu_has_avx2();
  return yes;
}
#endif

// A portable tile's accumulators into C: written (accumulate false) or added.
template <int64_t NR>
void store_tile(const float (&acc)[kMR][NR], float* c, int64_t ldc, bool accumulate) {
  for (int64_t r = 0; r < kMR; ++r) {
    for (int64_t j = 0; j < NR; ++j) c[r * ldc + j] = accumulate ? c[r * ldc + j] + acc[r][j] : acc[r][j];
  }
}

// F32 inputs: micro-panels of floats, one per step.
struct F32Panels {
  using Packed = float;
  using TileFn = sgemm_tile::TileFn;
  static constexpr int64_t kNR = sgemm_tile::kNR;
  static int64_t steps(int64_t kc) { return kc; }

  // One micro-panel of `width` lanes (of `lanes`) over depth kc: lane l at step k is
  // src[l * l_stride + k * k_stride]; lanes past width are zero. The loop runs along
  // whichever stride is 1, so both layouts read memory in order.
  static void pack(const float* src, int64_t l_stride, int64_t k_stride, int64_t width, int64_t lanes, int64_t kc,
                   float* dst) {
#if defined(FLASHLM_HAVE_AVX2)
    if (k_stride == 1 && width == lanes && use_avx2()) {
      if (lanes == kNR) return sgemm_tile::pack16_avx2(src, l_stride, kc, dst);
      if (lanes == kMR) return sgemm_tile::pack6_avx2(src, l_stride, kc, dst);
    }
#endif
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

  // The portable tile: the compiler vectorizes the j loop.
  static void tile_generic(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
    float acc[kMR][kNR] = {};
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t r = 0; r < kMR; ++r) {
        for (int64_t j = 0; j < kNR; ++j) acc[r][j] += a[k * kMR + r] * b[k * kNR + j];
      }
    }
    store_tile(acc, c, ldc, accumulate);
  }

  static TileFn tile() {
#if defined(FLASHLM_HAVE_AVX2)
    if (use_avx2()) return &sgemm_tile::tile_avx2;
#endif
    return &tile_generic;
  }
};

// BF16 inputs: micro-panels of step pairs, each uint32_t holding one lane's values at
// steps 2p (low half) and 2p + 1 (high half), as vdpbf16ps reads them; an odd last step
// is paired with a zero.
struct Bf16Panels {
  using Packed = uint32_t;
  using TileFn = sgemm_tile::Bf16TileFn;
  static constexpr int64_t kNR = sgemm_tile::kNRBf16;
  static int64_t steps(int64_t kc) { return (kc + 1) / 2; }

  static uint32_t pair(float lo, float hi) {
    return static_cast<uint32_t>(fp32_to_bf16(lo)) | static_cast<uint32_t>(fp32_to_bf16(hi)) << 16;
  }

  static void pack(const float* src, int64_t l_stride, int64_t k_stride, int64_t width, int64_t lanes, int64_t kc,
                   uint32_t* dst) {
#if defined(FLASHLM_HAVE_AVX512)
    static const bool native = cpu_has_avx512_bf16();
    if (native && sgemm_tile::pack_bf16_avx512(src, l_stride, k_stride, width, lanes, kc, dst)) return;
#endif
    const int64_t kp = steps(kc), even = kc / 2;
    if (width < lanes) std::fill(dst, dst + kp * lanes, 0u);
    if (k_stride == 1) {
      for (int64_t l = 0; l < width; ++l) {
        const float* s = src + l * l_stride;
        for (int64_t p = 0; p < even; ++p) dst[p * lanes + l] = pair(s[2 * p], s[2 * p + 1]);
        if (kc % 2 != 0) dst[even * lanes + l] = pair(s[kc - 1], 0.0f);
      }
      return;
    }
    for (int64_t p = 0; p < kp; ++p) {
      const float* s0 = src + 2 * p * k_stride;
      const float* s1 = 2 * p + 1 < kc ? s0 + k_stride : nullptr;
      for (int64_t l = 0; l < width; ++l) dst[p * lanes + l] = pair(s0[l * l_stride], s1 ? s1[l * l_stride] : 0.0f);
    }
  }

  // The portable tile, in vdpbf16ps's order (the high product, then the low one, into
  // each lane). A product of two BF16 values is exact in F32.
  static void tile_generic(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc, bool accumulate) {
    float acc[kMR][kNR] = {};
    for (int64_t p = 0; p < kp; ++p) {
      for (int64_t r = 0; r < kMR; ++r) {
        const uint32_t av = a[p * kMR + r];
        const float a_lo = bf16_to_fp32(static_cast<uint16_t>(av)), a_hi = bf16_to_fp32(static_cast<uint16_t>(av >> 16));
        for (int64_t j = 0; j < kNR; ++j) {
          const uint32_t bv = b[p * kNR + j];
          acc[r][j] += a_hi * bf16_to_fp32(static_cast<uint16_t>(bv >> 16));
          acc[r][j] += a_lo * bf16_to_fp32(static_cast<uint16_t>(bv));
        }
      }
    }
    store_tile(acc, c, ldc, accumulate);
  }

  static TileFn tile() {
#if defined(FLASHLM_HAVE_AVX512)
    if (cpu_has_avx512_bf16()) return &sgemm_tile::tile_bf16_avx512;
#endif
    return &tile_generic;
  }
};

// The driver, for either kind of panel. Block sizes: a packed B block (kKC steps x kNC
// columns) stays in L2 while the A micro-panels (kMR x kKC, a few KiB) stream through L1.
template <class Panels>
struct Driver {
  using Packed = typename Panels::Packed;
  static constexpr int64_t kNR = Panels::kNR;
  static constexpr int64_t kMC = 16 * kMR;
  static constexpr int64_t kNC = 16 * kNR;
  static constexpr int64_t kKC = 256;  // even, so a K block's pairs never straddle blocks

  // Rows [i0, i0 + mc) x depth [k0, k0 + kc) of op(A) as kMR-row micro-panels.
  static void pack_a(const SgemmArgs& g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, Packed* dst) {
    for (int64_t p = 0; p < mc; p += kMR, dst += kMR * Panels::steps(kc)) {
      const float* src = g.trans_a ? g.A + k0 * g.lda + i0 + p : g.A + (i0 + p) * g.lda + k0;
      Panels::pack(src, g.trans_a ? 1 : g.lda, g.trans_a ? g.lda : 1, std::min(kMR, mc - p), kMR, kc, dst);
    }
  }

  // Depth [k0, k0 + kc) x columns [j0, j0 + nc) of op(B) as kNR-column micro-panels.
  static void pack_b(const SgemmArgs& g, int64_t k0, int64_t kc, int64_t j0, int64_t nc, Packed* dst) {
    for (int64_t p = 0; p < nc; p += kNR, dst += kNR * Panels::steps(kc)) {
      const float* src = g.trans_b ? g.B + (j0 + p) * g.ldb + k0 : g.B + k0 * g.ldb + j0 + p;
      Panels::pack(src, g.trans_b ? g.ldb : 1, g.trans_b ? 1 : g.ldb, std::min(kNR, nc - p), kNR, kc, dst);
    }
  }

  // One kMC x kNC block of C over one K block: packed A block pa (kMR-row micro-panels),
  // packed B block pb (kNR-column micro-panels), register tiles jr-major so each B
  // micro-panel stays in L1 while the A micro-panels stream from L2.
  static void block_product(typename Panels::TileFn tile, const Packed* pa, const Packed* pb, int64_t kc, int64_t mc,
                            int64_t nc, float* c, int64_t ldc, bool accumulate) {
    const int64_t ks = Panels::steps(kc);
    float edge[kMR * kNR];
    for (int64_t jr = 0; jr < nc; jr += kNR) {
      for (int64_t ir = 0; ir < mc; ir += kMR) {
        const Packed* a = pa + ir * ks;
        const Packed* b = pb + jr * ks;
        float* ct = c + ir * ldc + jr;
        const int64_t h = std::min(kMR, mc - ir), w = std::min(kNR, nc - jr);
        if (h == kMR && w == kNR) {
          tile(ks, a, b, ct, ldc, accumulate);
          continue;
        }
        // An edge tile: computed whole into a buffer, its valid part added.
        tile(ks, a, b, edge, kNR, false);
        for (int64_t r = 0; r < h; ++r) {
          for (int64_t j = 0; j < w; ++j) {
            float& dst = ct[r * ldc + j];
            dst = accumulate ? dst + edge[r * kNR + j] : edge[r * kNR + j];
          }
        }
      }
    }
  }

  // The smaller operand is packed once, whole (every block of it, in parallel); the work
  // is then cut along the larger one's blocks, and each task packs its block of the
  // larger operand once per K block and runs it against every block of the smaller one in
  // its range. So each operand is packed once (the larger one once per cut of the smaller
  // dimension, which is only cut when there are too few blocks to keep the threads busy).
  static void run(const SgemmArgs& g, ThreadPool& pool) {
    static const typename Panels::TileFn tile = Panels::tile();
    const int64_t mb = (g.M + kMC - 1) / kMC, nb = (g.N + kNC - 1) / kNC, kb = (g.K + kKC - 1) / kKC;
    const bool whole_a = g.M <= g.N;  // A (M x K) is the smaller operand
    const int64_t n_small = whole_a ? mb : nb, n_large = whole_a ? nb : mb;
    constexpr int64_t kBlockA = kMC * kKC, kBlockB = kKC * kNC;  // upper bounds, in Packed
    const int64_t small_block = whole_a ? kBlockA : kBlockB;
    // The packed copy of the smaller operand is capped (a long K, such as the output
    // layer's input gradient over the vocabulary, would double a 100 MB operand): K is
    // taken in spans of whole K blocks whose packed copy fits the cap, one after the other,
    // so every C element still sums its K blocks in order.
    constexpr int64_t kMaxPacked = int64_t{4} << 20;  // elements (16 MiB)
    const int64_t span = std::clamp<int64_t>(kMaxPacked / (n_small * small_block), 1, kb);
    // The caller's buffer keeps its capacity from call to call (no page faults per call).
    thread_local std::vector<Packed> packed;
    if (packed.size() < static_cast<size_t>(n_small * span * small_block)) {
      packed.resize(static_cast<size_t>(n_small * span * small_block));
    }
    Packed* whole = packed.data();
    // Enough tasks for every thread: the smaller dimension is cut into `cuts` ranges.
    const int64_t want = 4 * static_cast<int64_t>(pool.size());
    const int64_t cuts = std::min(n_small, std::max<int64_t>(1, (want + n_large - 1) / n_large));
    for (int64_t kb0 = 0; kb0 < kb; kb0 += span) {
      const int64_t nk = std::min(span, kb - kb0);  // K blocks in this span
      pool.parallel_for(n_small * nk, [&](int64_t b0, int64_t b1, int) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t o = b / nk, k0 = (kb0 + b % nk) * kKC, kc = std::min(kKC, g.K - k0);
          if (whole_a) {
            pack_a(g, o * kMC, std::min(kMC, g.M - o * kMC), k0, kc, whole + b * small_block);
          } else {
            pack_b(g, k0, kc, o * kNC, std::min(kNC, g.N - o * kNC), whole + b * small_block);
          }
        }
      });
      // Tasks differ in size (edge blocks), so they are claimed one at a time rather than
      // split in equal counts; which task computes which block never changes.
      std::atomic<int64_t> next{0};
      const int64_t n_tasks = n_large * cuts;
      pool.parallel_for(pool.size(), [&](int64_t, int64_t, int) {
        thread_local std::vector<Packed> own;
        own.resize(static_cast<size_t>(whole_a ? kBlockB : kBlockA));
        for (int64_t t = next.fetch_add(1); t < n_tasks; t = next.fetch_add(1)) {
          const int64_t large = t / cuts, cut = t % cuts;
          const int64_t s0 = cut * n_small / cuts, s1 = (cut + 1) * n_small / cuts;
          for (int64_t kk = 0; kk < nk; ++kk) {
            const int64_t k0 = (kb0 + kk) * kKC, kc = std::min(kKC, g.K - k0);
            // The first K block applies beta: overwrite (beta 0) or accumulate; later ones add.
            const bool accumulate = kb0 + kk > 0 || g.beta != 0.0f;
            if (whole_a) {
              const int64_t j0 = large * kNC, nc = std::min(kNC, g.N - j0);
              pack_b(g, k0, kc, j0, nc, own.data());
              for (int64_t ib = s0; ib < s1; ++ib) {
                const int64_t i0 = ib * kMC, mc = std::min(kMC, g.M - i0);
                block_product(tile, whole + (ib * nk + kk) * kBlockA, own.data(), kc, mc, nc,
                              g.C + i0 * g.ldc + j0, g.ldc, accumulate);
              }
            } else {
              const int64_t i0 = large * kMC, mc = std::min(kMC, g.M - i0);
              pack_a(g, i0, mc, k0, kc, own.data());
              for (int64_t jb = s0; jb < s1; ++jb) {
                const int64_t j0 = jb * kNC, nc = std::min(kNC, g.N - j0);
                block_product(tile, own.data(), whole + (jb * nk + kk) * kBlockB, kc, mc, nc,
                              g.C + i0 * g.ldc + j0, g.ldc, accumulate);
              }
            }
          }
        }
      });
    }
  }
};

}  // namespace

SgemmInputs sgemm_inputs() { return t_inputs; }
SgemmInputsScope::SgemmInputsScope(SgemmInputs in) : saved_(t_inputs) { t_inputs = in; }
SgemmInputsScope::~SgemmInputsScope() { t_inputs = saved_; }
bool sgemm_bf16_native() { return cpu_has_avx512_bf16(); }

void sgemm(const SgemmArgs& g, ThreadPool& pool) {
  if (g.M <= 0 || g.N <= 0) return;
  if (g.beta != 0.0f && g.beta != 1.0f) {  // C = beta * C first; the K blocks then accumulate
    for (int64_t i = 0; i < g.M; ++i) {
      for (int64_t j = 0; j < g.N; ++j) g.C[i * g.ldc + j] *= g.beta;
    }
  }
  if (g.K <= 0) {  // an empty sum: C = beta * C
    if (g.beta == 0.0f) {
      for (int64_t i = 0; i < g.M; ++i) std::fill(g.C + i * g.ldc, g.C + i * g.ldc + g.N, 0.0f);
    }
    return;
  }
  if (t_inputs == SgemmInputs::kBf16) return Driver<Bf16Panels>::run(g, pool);
  Driver<F32Panels>::run(g, pool);
}

void sgemm_reference(const SgemmArgs& g, SgemmInputs in) {
  auto round = [in](float x) { return in == SgemmInputs::kBf16 ? bf16_to_fp32(fp32_to_bf16(x)) : x; };
  for (int64_t i = 0; i < g.M; ++i) {
    for (int64_t j = 0; j < g.N; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < g.K; ++k) s += static_cast<double>(round(a_at(g, i, k))) * round(b_at(g, k, j));
      float& c = g.C[i * g.ldc + j];
      c = static_cast<float>(s + (g.beta == 0.0f ? 0.0 : static_cast<double>(g.beta) * c));
    }
  }
}

}  // namespace flashlm
