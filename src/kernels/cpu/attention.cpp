#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/attention_tiles.h"
#include "kernels/cpu/avx2/avx2_kernels.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/ops.h"
#include "quant/quant.h"

namespace flashlm {
namespace {

// One tile: queries [t0, t0 + nt) x heads [h0, h0 + nh) of one KV group as rows
// r = t * nh + h (nt * nh <= kAttnMaxRows), over keys in tiles of kAttnKeyTile. The
// output rows themselves are the accumulators: zeroed, rescaled whenever a row's max
// grows, divided by the row's sum at the end.
void attend_tile(const AttentionQueries& qs, const PagedKvView& kv, const AttentionParams& p, int64_t window,
                 int64_t t0, int nt, int h0, int nh, const AttnTileKernels& kern) {
  const int d = p.head_dim;
  const int64_t kv_off = static_cast<int64_t>(h0 / (p.n_head / p.n_head_kv)) * d;
  // Slots are row_bytes apart; this KV head starts head_bytes into each (whole blocks,
  // as attention_kv_type_check requires).
  const bool is_f32 = kv.type == DType::F32;
  const size_t row_bytes = row_size(kv.type, kv.kv_dim);
  const size_t head_bytes = row_size(kv.type, kv_off);
  const auto* k_base = static_cast<const uint8_t*>(kv.k);
  const auto* v_base = static_cast<const uint8_t*>(kv.v);
  const int n_rows = nt * nh;
  const float* q_rows[kAttnMaxRows];
  float* o_rows[kAttnMaxRows];
  float m[kAttnMaxRows], l[kAttnMaxRows], corr[kAttnMaxRows];
  int jb[kAttnMaxRows], je[kAttnMaxRows];
  for (int t = 0; t < nt; ++t) {
    for (int h = 0; h < nh; ++h) {
      const int r = t * nh + h;
      const int64_t head_off = static_cast<int64_t>(h0 + h) * d;
      q_rows[r] = qs.q + (t0 + t) * qs.q_stride + head_off;
      o_rows[r] = qs.out + (t0 + t) * qs.out_stride + head_off;
      std::fill(o_rows[r], o_rows[r] + d, 0.0f);
      m[r] = -std::numeric_limits<float>::infinity();
      l[r] = 0.0f;
    }
  }
  const int64_t q_first = qs.pos0 + t0;
  const int64_t q_last = q_first + nt - 1;
  const auto window_start = [window](int64_t pos) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0; };

  alignas(32) float s[kAttnMaxRows * kAttnKeyTile];
  const float* k_rows[kAttnKeyTile];
  const float* v_rows[kAttnKeyTile];
  const void* k_raw[kAttnKeyTile];
  const void* v_raw[kAttnKeyTile];
  // Other types: each key/value tile converted to f32 once, then shared by all the
  // tile's rows (untouched, so free, for F32).
  alignas(32) float k_tile[kAttnKeyTile * kAttnMaxHeadDim];
  alignas(32) float v_tile[kAttnKeyTile * kAttnMaxHeadDim];
  const int64_t bs = kv.block_size;
  for (int64_t k0 = window_start(q_first); k0 <= q_last; k0 += kAttnKeyTile) {
    const int nk = static_cast<int>(std::min<int64_t>(kAttnKeyTile, q_last - k0 + 1));
    // Key/value rows through the block table, one block run at a time.
    for (int j = 0; j < nk;) {
      const int64_t pos = k0 + j;
      const int64_t first_slot = static_cast<int64_t>(kv.block_table[pos / bs]) * bs + pos % bs;
      const int n_here = static_cast<int>(std::min<int64_t>(nk - j, bs - pos % bs));
      for (int i = 0; i < n_here; ++i, ++j) {
        const size_t at = static_cast<size_t>(first_slot + i) * row_bytes + head_bytes;
        k_raw[j] = k_base + at;
        v_raw[j] = v_base + at;
      }
    }
    if (is_f32) {
      for (int j = 0; j < nk; ++j) {
        k_rows[j] = static_cast<const float*>(k_raw[j]);
        v_rows[j] = static_cast<const float*>(v_raw[j]);
      }
    } else {
      kern.load(kv.type, k_raw, nk, d, k_tile);
      kern.load(kv.type, v_raw, nk, d, v_tile);
      for (int j = 0; j < nk; ++j) {
        k_rows[j] = k_tile + j * d;
        v_rows[j] = v_tile + j * d;
      }
    }
    // Causal and window mask per query, as a column range of this key tile.
    for (int t = 0; t < nt; ++t) {
      const int64_t qp = q_first + t;
      const int b = static_cast<int>(std::clamp<int64_t>(window_start(qp) - k0, 0, nk));
      const int e = static_cast<int>(std::clamp<int64_t>(qp - k0 + 1, b, nk));
      for (int h = 0; h < nh; ++h) {
        jb[t * nh + h] = b;
        je[t * nh + h] = e;
      }
    }
    kern.scores(q_rows, n_rows, k_rows, nk, d, s, kAttnKeyTile);
    kern.softmax(s, kAttnKeyTile, n_rows, nk, jb, je, p.scale, p.softcap, m, l, corr);
    kern.accumulate(s, kAttnKeyTile, n_rows, v_rows, nk, d, o_rows, corr);
  }
  // Every query attends at least its own position, so l > 0.
  for (int r = 0; r < n_rows; ++r) ops::scale(o_rows[r], 1.0f / l[r], d);
}

}  // namespace

void attention_chunk(const AttentionQueries& qs, const PagedKvView& kv, const AttentionParams& p, int64_t window,
                     int head_begin, int head_end, const AttnTileKernels& kernels) {
  const int group = p.n_head / p.n_head_kv;
  for (int g0 = head_begin; g0 < head_end;) {
    // The part of the range in this KV group: all of it in one tile where it fits, with
    // as many queries as fill the tile.
    const int g1 = std::min(head_end, (g0 / group + 1) * group);
    const int nh = std::min(g1 - g0, kAttnMaxRows);
    const int nt = std::max(1, kAttnMaxRows / nh);
    for (int64_t t0 = 0; t0 < qs.n_q; t0 += nt) {
      const int n = static_cast<int>(std::min<int64_t>(nt, qs.n_q - t0));
      for (int h = g0; h < g1; h += nh) attend_tile(qs, kv, p, window, t0, n, h, std::min(nh, g1 - h), kernels);
    }
    g0 = g1;
  }
}

void attention_chunk(const AttentionQueries& qs, const PagedKvView& kv, const AttentionParams& p, int64_t window,
                     int head_begin, int head_end) {
  attention_chunk(qs, kv, p, window, head_begin, head_end, attn_tile_kernels_best());
}

Status attention_kv_type_check(DType type, int64_t head_dim) {
  const std::string hd = std::to_string(head_dim);
  switch (type) {
    case DType::F32:
      return Status::ok();
    case DType::F16:
    case DType::Q8_0:
      break;
    default:
      return Status::error("attention cannot read a KV cache of type id " +
                           std::to_string(static_cast<uint32_t>(type)));
  }
  const int64_t block = type_traits(type).block_size;
  if (head_dim <= 0 || head_dim % block != 0) {
    return Status::error(std::string("KV type ") + type_traits(type).name + " stores blocks of " +
                         std::to_string(block) + " values along a head, but this model's head_dim is " + hd +
                         " (use --kv-type f32 or f16)");
  }
  if (head_dim > kAttnMaxHeadDim) {
    return Status::error(std::string("KV type ") + type_traits(type).name + " supports head_dim up to " +
                         std::to_string(kAttnMaxHeadDim) + ", this model's is " + hd + " (use --kv-type f32)");
  }
  return Status::ok();
}

void kv_row_store(DType type, const float* src, void* dst, int64_t n) {
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
#if defined(FLASHLM_HAVE_AVX2)
  if (type == DType::F16 && cpu_has_avx2()) {
    avx2::kv_store_f16(src, dst, n);
    return;
  }
#endif
  type_traits(type).from_float(src, dst, n);
}

void attention_paged_ref(const float* q, const PagedKvView& kv, const AttentionParams& p, int64_t pos_begin,
                         int64_t pos_end, int head_begin, int head_end, float* out) {
  const int group = p.n_head / p.n_head_kv;
  for (int h = head_begin; h < head_end; ++h) {
    const float* qh = q + static_cast<int64_t>(h) * p.head_dim;
    float* oh = out + static_cast<int64_t>(h) * p.head_dim;
    const int64_t kv_off = static_cast<int64_t>(h / group) * p.head_dim;
    for (int d = 0; d < p.head_dim; ++d) oh[d] = 0.0f;
    // Any stored type, read through the traits table's scalar to_float.
    const TypeTraits& tt = type_traits(kv.type);
    const size_t row_bytes = row_size(kv.type, kv.kv_dim);
    const size_t head_bytes = row_size(kv.type, kv_off);
    std::vector<float> kf(static_cast<size_t>(p.head_dim)), vf(static_cast<size_t>(p.head_dim));
    // Online softmax: running max m and normaliser l; the accumulator is rescaled
    // whenever the max grows.
    float m = -std::numeric_limits<float>::infinity();
    float l = 0.0f;
    for (int64_t pos = pos_begin; pos <= pos_end; ++pos) {
      const int64_t block = kv.block_table[pos / kv.block_size];
      const size_t at = static_cast<size_t>(block * kv.block_size + pos % kv.block_size) * row_bytes + head_bytes;
      tt.to_float(static_cast<const uint8_t*>(kv.k) + at, kf.data(), p.head_dim);
      tt.to_float(static_cast<const uint8_t*>(kv.v) + at, vf.data(), p.head_dim);
      float s = ops::dot(qh, kf.data(), p.head_dim) * p.scale;
      if (p.softcap > 0.0f) s = p.softcap * std::tanh(s / p.softcap);
      if (s > m) {
        const float corr = std::exp(m - s);  // 0 on the first key (m = -inf)
        l *= corr;
        ops::scale(oh, corr, p.head_dim);
        m = s;
      }
      const float e = std::exp(s - m);
      l += e;
      ops::axpy(e, vf.data(), oh, p.head_dim);
    }
    if (l > 0.0f) ops::scale(oh, 1.0f / l, p.head_dim);
  }
}

}  // namespace flashlm
