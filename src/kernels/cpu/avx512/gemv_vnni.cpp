// Decode-sized matmuls (a few tokens) with the GEMM tile's arithmetic, straight from the
// quantized rows: no panel is written. For each (row, token) the operations are those
// of panel_tile_vnni (gemm_panel.h): exact int32 lane sums per 32-element chunk, then
// acc = fma(float(lane), s_lane * dx_c, acc) over chunks in order, the offset pairs 8 at a
// time for formats with mins, and the same 8-lane sum. So a token's result is the same
// bits alone, in a decode batch, or in a prefill tile, which is what lets the server
// batch decodes through the fast kernels and stay batch-invariant.
//
// Integers: weight codes go in unsigned (u = q + off, 0..255) and activations signed,
// so vpdpbusd needs no sign fix-ups; the -off * sum(x) of each lane is precomputed per
// token and chunk (gemv_init_vnni) and is the starting value of the accumulation.
//
// Built with AVX-512 F/BW/VL + VNNI flags; only <immintrin.h>, the block structs and our
// own declarations are included (see avx2/dot_avx2.cpp for why).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/cpu/avx512/avx512_kernels.h"
#include "kernels/cpu/avx512/lane_sum.h"
#include "quant/blocks.h"

namespace flashlm::avx512 {
namespace {

using namespace quant;

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Elements 0..15 from the low nibbles of 16 bytes, 16..31 from the high ones.
__m256i nibbles32(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

// 0x10 in byte j where bit j of the little-endian uint32 at qh is set (Q5 fifth bits).
__m256i high_bits32(const uint8_t* qh) {
  uint32_t u;
  std::memcpy(&u, qh, 4);
  return _mm256_maskz_mov_epi8(static_cast<__mmask32>(u), _mm256_set1_epi8(0x10));
}

// One chunk handed to the token loop: unsigned codes and lane scales.
struct Chunk {
  __m256i u;
  __m256 sc;
};

// Per format: kOff (u - kOff is the panel's signed code), kOffsets (has offsets m_c), the
// bytes and chunks of a block, and unpack(block, mb, emit) calling emit(j, chunk) for its
// chunks in order, with exactly the floats unpack_panel computes; a format with offsets
// also writes the block's (m_c, 0) pairs to mb[0 .. 2 * kChunks).
struct FmtQ4_0 {
  static constexpr int kOff = 8, kChunks = 1;
  static constexpr bool kOffsets = false;
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  template <typename Emit>
  static void unpack(const uint8_t* b, float*, Emit&& emit) {
    emit(0, Chunk{nibbles32(b + offsetof(BlockQ4_0, qs)), _mm256_set1_ps(half_at(b))});
  }
};

struct FmtQ4_1 {
  static constexpr int kOff = 0, kChunks = 1;
  static constexpr bool kOffsets = true;
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  template <typename Emit>
  static void unpack(const uint8_t* b, float* mb, Emit&& emit) {
    mb[0] = half_at(b + offsetof(BlockQ4_1, m));
    mb[1] = 0.0f;
    emit(0, Chunk{nibbles32(b + offsetof(BlockQ4_1, qs)), _mm256_set1_ps(half_at(b + offsetof(BlockQ4_1, d)))});
  }
};

struct FmtQ5_0 {
  static constexpr int kOff = 16, kChunks = 1;
  static constexpr bool kOffsets = false;
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  template <typename Emit>
  static void unpack(const uint8_t* b, float*, Emit&& emit) {
    const __m256i u = _mm256_or_si256(nibbles32(b + offsetof(BlockQ5_0, qs)), high_bits32(b + offsetof(BlockQ5_0, qh)));
    emit(0, Chunk{u, _mm256_set1_ps(half_at(b + offsetof(BlockQ5_0, d)))});
  }
};

struct FmtQ5_1 {
  static constexpr int kOff = 0, kChunks = 1;
  static constexpr bool kOffsets = true;
  static constexpr size_t kBytes = sizeof(BlockQ5_1);
  template <typename Emit>
  static void unpack(const uint8_t* b, float* mb, Emit&& emit) {
    const __m256i u = _mm256_or_si256(nibbles32(b + offsetof(BlockQ5_1, qs)), high_bits32(b + offsetof(BlockQ5_1, qh)));
    mb[0] = half_at(b + offsetof(BlockQ5_1, m));
    mb[1] = 0.0f;
    emit(0, Chunk{u, _mm256_set1_ps(half_at(b + offsetof(BlockQ5_1, d)))});
  }
};

struct FmtQ8_0 {
  static constexpr int kOff = 128, kChunks = 1;
  static constexpr bool kOffsets = false;
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  template <typename Emit>
  static void unpack(const uint8_t* b, float*, Emit&& emit) {
    const __m256i u = _mm256_xor_si256(load32(b + offsetof(BlockQ8_0, qs)), _mm256_set1_epi8(static_cast<char>(0x80)));
    emit(0, Chunk{u, _mm256_set1_ps(half_at(b + offsetof(BlockQ8_0, d)))});
  }
};

// The eight six-bit scales (sc) and mins (m) of a Q4_K/Q5_K block, quant_ref.h's
// k4_scale_min for j = 0..7, four bytes at a time: sub-blocks 0-3 keep their six bits in
// bytes 0-7 of the 12; 4-7 take their low nibbles from bytes 8-11 and their top two bits
// from the top of bytes 0-7.
void scales_mins_k4(const uint8_t* q, uint64_t* sc, uint64_t* m) {
  uint32_t a, b, c;
  std::memcpy(&a, q, 4);
  std::memcpy(&b, q + 4, 4);
  std::memcpy(&c, q + 8, 4);
  const uint32_t sc_hi = (c & 0x0F0F0F0Fu) | (((a >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((c >> 4) & 0x0F0F0F0Fu) | (((b >> 6) & 0x03030303u) << 4);
  *sc = (a & 0x3F3F3F3Fu) | (static_cast<uint64_t>(sc_hi) << 32);
  *m = (b & 0x3F3F3F3Fu) | (static_cast<uint64_t>(m_hi) << 32);
}

// Eight bytes as floats times d: the per-element products unpack_panel computes.
__m256 scaled8(uint64_t v, float d) {
  return _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(v)))));
}

template <bool kQ5>
struct FmtQ45_K {
  using Block = std::conditional_t<kQ5, BlockQ5_K, BlockQ4_K>;
  static constexpr int kOff = 0, kChunks = 8;
  static constexpr bool kOffsets = true;
  static constexpr size_t kBytes = sizeof(Block);
  template <typename Emit>
  static void unpack(const uint8_t* b, float* mb, Emit&& emit) {
    // A block's 8 scales and mins are decoded and scaled once, 8 at a time; each chunk
    // then broadcasts its own (a scalar decode per chunk cost more than its dot product).
    uint64_t sc8, m8;
    scales_mins_k4(b + offsetof(Block, scales), &sc8, &m8);
    alignas(32) float sc[8];
    _mm256_store_ps(sc, scaled8(sc8, half_at(b + offsetof(Block, d))));
    // Offsets -(dmin * m_j) into the even lanes of mb[0..16).
    const __m256 neg = _mm256_xor_ps(scaled8(m8, half_at(b + offsetof(Block, dmin))), _mm256_set1_ps(-0.0f));
    const __m256 lo = _mm256_unpacklo_ps(neg, _mm256_setzero_ps());  // m0 0 m1 0 | m4 0 m5 0
    const __m256 hi = _mm256_unpackhi_ps(neg, _mm256_setzero_ps());  // m2 0 m3 0 | m6 0 m7 0
    _mm256_storeu_ps(mb, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(mb + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    const uint8_t* qs = b + offsetof(Block, qs);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i hb = _mm256_setzero_si256();
    if constexpr (kQ5) hb = load32(b + offsetof(BlockQ5_K, qh));
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {  // sub-block j: nibble j % 2 of qs[32 * (j / 2) + l]
      const __m256i q = load32(qs + 32 * (j / 2));
      __m256i u = _mm256_and_si256(j % 2 == 0 ? q : _mm256_srli_epi16(q, 4), m4);
      if constexpr (kQ5) {  // fifth bit: bit j of qh[l]; hb is shifted down one bit per sub-block
        u = _mm256_or_si256(u, _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(1)), 4));
        hb = _mm256_srli_epi16(hb, 1);
      }
      emit(j, Chunk{u, _mm256_broadcast_ss(sc + j)});
    }
  }
};

struct FmtQ6_K {
  static constexpr int kOff = 32, kChunks = 8;
  static constexpr bool kOffsets = false;
  static constexpr size_t kBytes = sizeof(BlockQ6_K);
  template <typename Emit>
  static void unpack(const uint8_t* b, float*, Emit&& emit) {
    // The 16 signed scales times d, once per block; chunk c takes lanes 2c and 2c + 1.
    alignas(32) float s16[16];
    const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + offsetof(BlockQ6_K, scales)));
    const __m256 d = _mm256_set1_ps(half_at(b + offsetof(BlockQ6_K, d)));
    _mm256_store_ps(s16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(s8))));
    _mm256_store_ps(s16 + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(s8, s8)))));
    const __m256i pair = _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {  // 128 elements: chunk k from ql[64h + 32 (k % 2)] and qh[32h] as unpack_panel
      const __m256i ql0 = load32(b + offsetof(BlockQ6_K, ql) + 64 * h);
      const __m256i ql1 = load32(b + offsetof(BlockQ6_K, ql) + 64 * h + 32);
      const __m256i qh = load32(b + offsetof(BlockQ6_K, qh) + 32 * h);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(k % 2 == 0 ? ql0 : ql1, (k / 2) * 4), m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m3);
        const __m256i u = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
        const __m256 two = _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(s16 + 8 * h + 2 * k)));
        emit(4 * h + k, Chunk{u, _mm256_permutevar8x32_ps(two, pair)});
      }
    }
  }
};

// How far ahead of the rows being read the software prefetch runs, in bytes.
constexpr int64_t kPrefetchBytes = 2048;

// NR rows of w (row_bytes apart) from `row` against NT tokens. init: [NT][n_chunks][8]
// lane starts (only read when F::kOff != 0); mb: NR * 2 * n_chunks floats of scratch.
// Rows are independent chains (NR > 1 only interleaves them for the out-of-order core).
template <typename F, int NR, int NT>
void gemv_rows(const uint8_t* row, size_t row_bytes, int64_t nc, const int8_t* x, size_t x_stride, const float* yd,
               size_t yd_stride, const int32_t* init, size_t init_stride, float* out, size_t ldo, float* mb) {
  const int64_t n_blocks = nc / F::kChunks;
  __m256 acc[NR][NT];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  // Each row's chunk work with its row index a compile-time constant, so the
  // accumulators stay in registers (a runtime index would spill them to the stack).
  const auto row_block = [&]<int R>(int64_t ib) {
    float* mbr = mb + R * 2 * nc + 2 * ib * F::kChunks;
    F::unpack(row + R * row_bytes + ib * static_cast<int64_t>(F::kBytes), mbr, [&](int j, const Chunk& ch) {
      const int64_t c = ib * F::kChunks + j;
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const __m256i xv = load32(x + t * x_stride + c * 32);
        const __m256i start = F::kOff != 0 ? load32(init + t * init_stride + c * 8) : _mm256_setzero_si256();
        const __m256i dot = _mm256_dpbusd_epi32(start, ch.u, xv);
        const __m256 dx = _mm256_broadcast_ss(yd + t * yd_stride + 2 * c + 1);
        acc[R][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(ch.sc, dx), acc[R][t]);
      }
    });
  };
  for (int64_t ib = 0; ib < n_blocks; ++ib) {
    // NR interleaved rows advance as NR streams a row apart, which the hardware
    // prefetchers follow badly (measured: a 178 MB Q8_0 matrix streamed at a third of the
    // bandwidth). The rows are contiguous, so prefetching NR blocks' worth of lines at a
    // linear address ahead keeps one sequential stream in flight.
    {
      const char* pf = reinterpret_cast<const char*>(row) + ib * NR * static_cast<int64_t>(F::kBytes) + kPrefetchBytes;
      for (int64_t k = 0; k < NR * static_cast<int64_t>(F::kBytes); k += 64) _mm_prefetch(pf + k, _MM_HINT_T0);
    }
    [&]<int... R>(std::integer_sequence<int, R...>) {
      (row_block.template operator()<R>(ib), ...);
    }(std::make_integer_sequence<int, NR>{});
  }
  if constexpr (F::kOffsets) {
    const int64_t n_pairs = 2 * nc;
    for (int64_t j = 0; j < n_pairs; j += 8) {
      const __mmask8 mask = n_pairs - j >= 8 ? __mmask8{0xFF} : static_cast<__mmask8>((1u << (n_pairs - j)) - 1);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        const __m256 m = _mm256_maskz_loadu_ps(mask, mb + r * 2 * nc + j);
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          acc[r][t] = _mm256_fmadd_ps(m, _mm256_maskz_loadu_ps(mask, yd + t * yd_stride + j), acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) out[t * ldo + r] = lane_sum(acc[r][t]);
  }
}

// All n_rows rows: NR at a time (fewer for two or more tokens, whose accumulators
// already fill the registers), then one at a time.
template <typename F, int NT>
void gemv(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t nc, const int8_t* x, size_t x_stride,
          const float* yd, size_t yd_stride, const int32_t* init, size_t init_stride, float* out, size_t ldo,
          float* mb) {
  // One token: four rows interleaved hide the accumulator's FMA latency (Q4_1, Q5_0,
  // K-quants: about 1.5x in L2). Q8_0 too, now that the prefetch keeps the four rows one
  // stream: its single chain of dependent FMAs held a 178 MB matrix at 24 GB/s on a Zen 4
  // core whose read bandwidth is 30 GB/s; four rows reach 29.
  constexpr int NR = NT == 1 ? 4 : NT == 2 ? 2 : 1;
  int64_t r = 0;
  for (; r + NR <= n_rows; r += NR) {
    gemv_rows<F, NR, NT>(w + static_cast<size_t>(r) * row_bytes, row_bytes, nc, x, x_stride, yd, yd_stride, init,
                         init_stride, out + r, ldo, mb);
  }
  for (; r < n_rows; ++r) {
    gemv_rows<F, 1, NT>(w + static_cast<size_t>(r) * row_bytes, row_bytes, nc, x, x_stride, yd, yd_stride, init,
                        init_stride, out + r, ldo, mb);
  }
}

template <typename F, int NT>
void gemv_nt(const GemvArgs& a) {
  gemv<F, NT>(a.w, a.row_bytes, a.n_rows, a.n_chunks, a.x, a.x_stride, a.yd, a.yd_stride, a.init, a.init_stride,
              a.out, a.ldo, a.mb);
}

template <typename F>
void gemv_any(const GemvArgs& a) {
  static constexpr GemvFn kByTokens[kGemvMaxTok] = {&gemv_nt<F, 1>, &gemv_nt<F, 2>, &gemv_nt<F, 3>, &gemv_nt<F, 4>,
                                                    &gemv_nt<F, 5>, &gemv_nt<F, 6>, &gemv_nt<F, 7>, &gemv_nt<F, 8>};
  kByTokens[a.n_tok - 1](a);
}

// Writes rows[0..kPanelRows) (n_rows real ones, the rest zero) into the panel as
// gemm::unpack_panel does with bias_for_unsigned, with the same unpackers as gemv.
template <typename F>
void unpack_panel(const uint8_t* const* rows, int n_rows, int64_t nc, gemm::Panel& p) {
  constexpr int R = gemm::kPanelRows;
  const __m256i off = _mm256_set1_epi8(static_cast<char>(F::kOff));
  const __m256i ones = _mm256_set1_epi8(1);
  for (int r = 0; r < R; ++r) {
    float* mb = p.mb + static_cast<int64_t>(r) * 2 * nc;
    if (r >= n_rows) {
      for (int64_t c = 0; c < nc; ++c) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(p.q + (c * R + r) * 32), _mm256_setzero_si256());
        _mm256_store_ps(p.s + (c * R + r) * 8, _mm256_setzero_ps());
        _mm256_store_si256(reinterpret_cast<__m256i*>(p.bias + (c * R + r) * 8), _mm256_setzero_si256());
        mb[2 * c] = mb[2 * c + 1] = 0.0f;
      }
      continue;
    }
    if constexpr (!F::kOffsets) std::memset(mb, 0, static_cast<size_t>(2 * nc) * sizeof(float));
    for (int64_t ib = 0; ib < nc / F::kChunks; ++ib) {
      F::unpack(rows[r] + ib * static_cast<int64_t>(F::kBytes), mb + 2 * ib * F::kChunks, [&](int j, const Chunk& ch) {
        const int64_t c = ib * F::kChunks + j;
        const __m256i q = _mm256_sub_epi8(ch.u, off);
        _mm256_store_si256(reinterpret_cast<__m256i*>(p.q + (c * R + r) * 32), q);
        _mm256_store_ps(p.s + (c * R + r) * 8, ch.sc);
        // -128 * (sum of each 4-code group): vpdpbusd of ones and the signed codes.
        const __m256i sum4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
        _mm256_store_si256(reinterpret_cast<__m256i*>(p.bias + (c * R + r) * 8),
                           _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sum4, 7)));
      });
    }
  }
  p.has_offsets = F::kOffsets;
}

}  // namespace

void unpack_panel_vnni(GemvFormat f, const uint8_t* const* rows, int n_rows, int64_t n_in, gemm::Panel& p) {
  const int64_t nc = n_in / 32;
  switch (f) {
    case GemvFormat::kQ4_0: unpack_panel<FmtQ4_0>(rows, n_rows, nc, p); return;
    case GemvFormat::kQ4_1: unpack_panel<FmtQ4_1>(rows, n_rows, nc, p); return;
    case GemvFormat::kQ5_0: unpack_panel<FmtQ5_0>(rows, n_rows, nc, p); return;
    case GemvFormat::kQ5_1: unpack_panel<FmtQ5_1>(rows, n_rows, nc, p); return;
    case GemvFormat::kQ8_0: unpack_panel<FmtQ8_0>(rows, n_rows, nc, p); return;
    case GemvFormat::kQ4_K: unpack_panel<FmtQ45_K<false>>(rows, n_rows, nc, p); return;
    case GemvFormat::kQ5_K: unpack_panel<FmtQ45_K<true>>(rows, n_rows, nc, p); return;
    case GemvFormat::kQ6_K: unpack_panel<FmtQ6_K>(rows, n_rows, nc, p); return;
  }
}

GemvFn gemv_vnni_for(GemvFormat f) {
  switch (f) {
    case GemvFormat::kQ4_0: return &gemv_any<FmtQ4_0>;
    case GemvFormat::kQ4_1: return &gemv_any<FmtQ4_1>;
    case GemvFormat::kQ5_0: return &gemv_any<FmtQ5_0>;
    case GemvFormat::kQ5_1: return &gemv_any<FmtQ5_1>;
    case GemvFormat::kQ8_0: return &gemv_any<FmtQ8_0>;
    case GemvFormat::kQ4_K: return &gemv_any<FmtQ45_K<false>>;
    case GemvFormat::kQ5_K: return &gemv_any<FmtQ45_K<true>>;
    case GemvFormat::kQ6_K: return &gemv_any<FmtQ6_K>;
  }
  return nullptr;
}

int gemv_vnni_offset(GemvFormat f) {
  switch (f) {
    case GemvFormat::kQ4_0: return FmtQ4_0::kOff;
    case GemvFormat::kQ5_0: return FmtQ5_0::kOff;
    case GemvFormat::kQ8_0: return FmtQ8_0::kOff;
    case GemvFormat::kQ6_K: return FmtQ6_K::kOff;
    default: return 0;
  }
}

void gemv_init_vnni(const int8_t* x, int64_t n_chunks, int off, int32_t* init) {
  const __m256i o = _mm256_set1_epi8(static_cast<char>(off));
  for (int64_t c = 0; c < n_chunks; ++c) {
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), o, load32(x + c * 32));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(init + c * 8), _mm256_sub_epi32(_mm256_setzero_si256(), s));
  }
}

}  // namespace flashlm::avx512
