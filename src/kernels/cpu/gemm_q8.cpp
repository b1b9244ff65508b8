#include "kernels/cpu/gemm_q8.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_panel.h"
#include "kernels/cpu/vec_dot.h"

#if defined(FLASHLM_HAVE_AVX512)
#include "kernels/cpu/avx512/avx512_kernels.h"
#endif

namespace flashlm::gemm {
namespace {

constexpr int kTileTokens = 4;
// Rows per work item of the decode kernels.
constexpr int64_t kGemvRows = 16;

// A 64-byte aligned scratch buffer that grows and is then reused.
class AlignedScratch {
 public:
  uint8_t* get(size_t bytes) {
    if (buf_.size() < bytes + 64) buf_.resize(bytes + 64);
    auto p = reinterpret_cast<uintptr_t>(buf_.data());
    return reinterpret_cast<uint8_t*>((p + 63) & ~uintptr_t{63});
  }

 private:
  std::vector<uint8_t> buf_;
};

using TileFn = void (*)(const Panel&, const int8_t*, size_t, const float*, size_t, int, float*);

TileFn tile_fn(TileKernel k, bool* unsigned_acts) {
  *unsigned_acts = false;
#if defined(FLASHLM_HAVE_AVX512)
  if (k == TileKernel::kVnni) {
    *unsigned_acts = true;
    return avx512::panel_tile_vnni;
  }
#endif
  (void)k;
  return panel_tile_reference;
}

#if defined(FLASHLM_HAVE_AVX512)
bool gemv_format(DType t, avx512::GemvFormat* f) {
  using avx512::GemvFormat;
  switch (t) {
    case DType::Q4_0: *f = GemvFormat::kQ4_0; return true;
    case DType::Q4_1: *f = GemvFormat::kQ4_1; return true;
    case DType::Q5_0: *f = GemvFormat::kQ5_0; return true;
    case DType::Q5_1: *f = GemvFormat::kQ5_1; return true;
    case DType::Q8_0: *f = GemvFormat::kQ8_0; return true;
    case DType::Q4_K: *f = GemvFormat::kQ4_K; return true;
    case DType::Q5_K: *f = GemvFormat::kQ5_K; return true;
    case DType::Q6_K: *f = GemvFormat::kQ6_K; return true;
    default: return false;
  }
}

#endif

// A step's activations quantized for weights of type wt, as gemm::Acts, in the calling
// thread's buffer (shared with the workers by address). With gemv_off != 0 (decode
// kernels of a format whose codes go in with an offset) each token's per-lane
// -off * sum(x) follows (avx512::gemv_init_vnni), init_stride int32s apart.
struct QuantizedActs {
  Acts a;
  int32_t* init = nullptr;
  size_t init_stride = 0;
};

QuantizedActs quantize_acts(DType wt, int64_t n_in, const float* x, int64_t ldx, int64_t n_tok, int gemv_off,
                            ThreadPool& pool) {
  const VecDotTraits& vt = vec_dot_traits(wt);
  const int64_t nc = n_in / kChunk;
  thread_local AlignedScratch act_scratch;
  QuantizedActs qa;
  Acts& a = qa.a;
  a.n_chunks = nc;
  a.q_stride = static_cast<size_t>(n_in);
  a.yd_stride = static_cast<size_t>(2 * nc);
  qa.init_stride = static_cast<size_t>(nc) * 8;
  const size_t q_bytes = (static_cast<size_t>(n_tok) * a.q_stride + 63) & ~size_t{63};
  const size_t yd_bytes = (static_cast<size_t>(n_tok) * a.yd_stride * sizeof(float) + 63) & ~size_t{63};
  const size_t init_bytes = gemv_off != 0 ? static_cast<size_t>(n_tok) * qa.init_stride * sizeof(int32_t) : 0;
  uint8_t* abuf = act_scratch.get(q_bytes + yd_bytes + init_bytes);
  a.q = reinterpret_cast<int8_t*>(abuf);
  a.yd = reinterpret_cast<float*>(abuf + q_bytes);
  if (gemv_off != 0) qa.init = reinterpret_cast<int32_t*>(abuf + q_bytes + yd_bytes);
  pool.parallel_for(n_tok, [&](int64_t tb, int64_t te, int) {
    thread_local std::vector<uint8_t> xq;
    if (xq.size() < vt.row_bytes(n_in)) xq.resize(vt.row_bytes(n_in));
    for (int64_t t = tb; t < te; ++t) {
      vt.quantize_row(x + t * ldx, xq.data(), n_in);
      unpack_acts(wt, xq.data(), n_in, a, t);
#if defined(FLASHLM_HAVE_AVX512)
      if (qa.init != nullptr) {
        avx512::gemv_init_vnni(a.q + static_cast<size_t>(t) * a.q_stride, nc, gemv_off, qa.init + t * qa.init_stride);
      }
#endif
    }
  });
  return qa;
}

}  // namespace

bool gemv_parts(const GemvPart* parts, int n_parts, const float* x, int64_t ldx, int64_t n_tok, ThreadPool& pool) {
#if defined(FLASHLM_HAVE_AVX512)
  if (n_parts < 1 || n_parts > kMaxGemvParts || n_tok < 1 || n_tok >= kGemvMaxTokens || !cpu_has_avx512_vnni()) {
    return false;
  }
  const DType wt = parts[0].w->dtype;
  const int64_t n_in = parts[0].w->ne[0];
  for (int i = 1; i < n_parts; ++i) {
    if (parts[i].w->dtype != wt || parts[i].w->ne[0] != n_in) return false;
  }
  avx512::GemvFormat gf{};
  if (!gemv_format(wt, &gf) || vec_dot_traits(wt).quantize_row == nullptr) return false;
  const QuantizedActs qa = quantize_acts(wt, n_in, x, ldx, n_tok, avx512::gemv_vnni_offset(gf), pool);
  // Work items of kGemvRows rows, the parts' one after the other: one pool
  // synchronisation for all of them (the q/k/v or gate/up projections of a layer).
  int64_t first_block[kMaxGemvParts + 1] = {0};
  for (int i = 0; i < n_parts; ++i) {
    first_block[i + 1] = first_block[i] + (parts[i].row_end - parts[i].row_begin + kGemvRows - 1) / kGemvRows;
  }
  const avx512::GemvFn fn = avx512::gemv_vnni_for(gf);
  pool.parallel_for(first_block[n_parts], [&](int64_t bb, int64_t be, int) {
    thread_local std::vector<float> mb;
    if (mb.size() < static_cast<size_t>(8 * qa.a.n_chunks)) mb.resize(static_cast<size_t>(8 * qa.a.n_chunks));
    avx512::GemvArgs g;
    g.n_chunks = qa.a.n_chunks;
    g.x_stride = qa.a.q_stride;
    g.yd_stride = qa.a.yd_stride;
    g.init_stride = qa.init_stride;
    g.mb = mb.data();
    for (int i = 0; i < n_parts; ++i) {
      const int64_t b = std::max(bb, first_block[i]);
      const int64_t e = std::min(be, first_block[i + 1]);
      if (b >= e) continue;
      const GemvPart& pt = parts[i];
      const int64_t r0 = pt.row_begin + (b - first_block[i]) * kGemvRows;
      const int64_t r1 = std::min(pt.row_end, pt.row_begin + (e - first_block[i]) * kGemvRows);
      g.row_bytes = pt.w->nb[1];
      g.ldo = static_cast<size_t>(pt.ldy);
      g.w = pt.w->row_ptr(r0);
      g.n_rows = r1 - r0;
      for (int64_t t0 = 0; t0 < n_tok; t0 += avx512::kGemvMaxTok) {
        g.n_tok = static_cast<int>(std::min<int64_t>(avx512::kGemvMaxTok, n_tok - t0));
        g.x = qa.a.q + static_cast<size_t>(t0) * qa.a.q_stride;
        g.yd = qa.a.yd + static_cast<size_t>(t0) * qa.a.yd_stride;
        g.init = qa.init == nullptr ? nullptr : qa.init + static_cast<size_t>(t0) * qa.init_stride;
        g.out = pt.y + t0 * pt.ldy + (r0 - pt.row_begin);
        fn(g);
      }
    }
  });
  return true;
#else
  (void)parts;
  (void)n_parts;
  (void)x;
  (void)ldx;
  (void)n_tok;
  (void)pool;
  return false;
#endif
}

bool best_tile_kernel(TileKernel* out) {
#if defined(FLASHLM_HAVE_AVX512)
  if (cpu_has_avx512_vnni()) {
    *out = TileKernel::kVnni;
    return true;
  }
#endif
  (void)out;
  return false;
}

bool gemm_rows(const TensorView& w, int64_t row_begin, int64_t row_end, const float* x, int64_t ldx, float* y,
               int64_t ldy, int64_t n_tok, ThreadPool& pool, TileKernel kernel) {
  if (!panel_supported(w.dtype)) return false;
  if (vec_dot_traits(w.dtype).quantize_row == nullptr) return false;
  const int64_t n_in = w.ne[0];
  bool unsigned_acts = false;
  const TileFn tile = tile_fn(kernel, &unsigned_acts);
#if defined(FLASHLM_HAVE_AVX512)
  avx512::GemvFormat gf{};
  if (kernel == TileKernel::kVnni) {
    // Every panel format has a VNNI unpacker; gf also selects the panel unpacker below.
    if (!gemv_format(w.dtype, &gf)) return false;
    const GemvPart part{&w, row_begin, row_end, y, ldy};
    if (gemv_parts(&part, 1, x, ldx, n_tok, pool)) return true;  // decode-sized batch
  }
#endif
  const Acts a = quantize_acts(w.dtype, n_in, x, ldx, n_tok, 0, pool).a;
  const int64_t nc = a.n_chunks;
  const DType wt = w.dtype;

  const int64_t n_rows = row_end - row_begin;
  const int64_t n_panels = (n_rows + kPanelRows - 1) / kPanelRows;
  pool.parallel_for(n_panels, [&](int64_t pb, int64_t pe, int) {
    thread_local AlignedScratch panel_scratch;
    Panel p;
    p.bind(panel_scratch.get(Panel::bytes(nc)), nc);
    float out[kTileTokens * kPanelRows];
    for (int64_t pi = pb; pi < pe; ++pi) {
      const int64_t r0 = row_begin + pi * kPanelRows;
      const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, row_end - r0));
      const uint8_t* rows[kPanelRows];
      for (int r = 0; r < nr; ++r) rows[r] = w.row_ptr(r0 + r);
#if defined(FLASHLM_HAVE_AVX512)
      if (kernel == TileKernel::kVnni) {
        avx512::unpack_panel_vnni(gf, rows, nr, n_in, p);
      } else {
        unpack_panel(wt, rows, nr, n_in, unsigned_acts, p);
      }
#else
      unpack_panel(wt, rows, nr, n_in, unsigned_acts, p);
#endif
      for (int64_t t0 = 0; t0 < n_tok; t0 += kTileTokens) {
        const int nt = static_cast<int>(std::min<int64_t>(kTileTokens, n_tok - t0));
        tile(p, a.q + static_cast<size_t>(t0) * a.q_stride, a.q_stride, a.yd + static_cast<size_t>(t0) * a.yd_stride,
             a.yd_stride, nt, out);
        for (int t = 0; t < nt; ++t) {
          float* yt = y + (t0 + t) * ldy + (r0 - row_begin);
          for (int r = 0; r < nr; ++r) yt[r] = out[t * kPanelRows + r];
        }
      }
    }
  });
  return true;
}

}  // namespace flashlm::gemm
