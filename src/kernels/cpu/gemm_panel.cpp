#include "kernels/cpu/gemm_panel.h"

#include <cstring>

#include "quant/blocks.h"
#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm::gemm {

using namespace flashlm::quant;

namespace {

size_t align64(size_t n) { return (n + 63) & ~size_t{63}; }

// Where one row's chunk c lives in the panel.
struct RowOut {
  Panel* p;
  int r;
  int8_t* q(int64_t c) const { return p->q + (c * kPanelRows + r) * kChunk; }
  void set_scale(int64_t c, float lo, float hi) const {
    float* s = p->s + (c * kPanelRows + r) * 8;
    for (int i = 0; i < 4; ++i) s[i] = lo;
    for (int i = 4; i < 8; ++i) s[i] = hi;
  }
  void set_min(int64_t c, float m) const { p->mb[(static_cast<int64_t>(r) * p->n_chunks + c) * 2] = m; }
};

// Bit i of a byte -> 0x10 in byte i of the entry: Q5's fifth bits, 8 codes per lookup.
struct HighBitTable {
  uint64_t v[256];
  constexpr HighBitTable() : v() {
    for (int b = 0; b < 256; ++b) {
      uint64_t e = 0;
      for (int i = 0; i < 8; ++i) {
        if ((b >> i) & 1) e |= uint64_t{0x10} << (8 * i);
      }
      v[b] = e;
    }
  }
};
constexpr HighBitTable kHighBits;

// q[i] = (qs[i] & 15 | bit i of qh << 4) - off for i < 16, qs[i - 16] >> 4 for the rest.
void unpack_q5_codes(const uint8_t* qs, uint32_t qh, int off, int8_t* q) {
  uint8_t hb[32];
  for (int k = 0; k < 4; ++k) {
    const uint64_t e = kHighBits.v[(qh >> (8 * k)) & 0xFF];
    std::memcpy(hb + 8 * k, &e, 8);
  }
  for (int i = 0; i < 16; ++i) {
    q[i] = static_cast<int8_t>(((qs[i] & 15) | hb[i]) - off);
    q[i + 16] = static_cast<int8_t>(((qs[i] >> 4) | hb[i + 16]) - off);
  }
}

template <typename Block>
Block load_block(const uint8_t* row, int64_t i) {
  Block b;
  std::memcpy(&b, row + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return b;
}

// Legacy formats: one chunk per block.
void unpack_row(DType type, const uint8_t* row, int64_t n_in, const RowOut& o) {
  const int64_t nb32 = n_in / 32;
  switch (type) {
    case DType::Q4_0:
      for (int64_t c = 0; c < nb32; ++c) {
        const auto b = load_block<BlockQ4_0>(row, c);
        int8_t* q = o.q(c);
        for (int i = 0; i < 16; ++i) {
          q[i] = static_cast<int8_t>((b.qs[i] & 15) - 8);
          q[i + 16] = static_cast<int8_t>((b.qs[i] >> 4) - 8);
        }
        const float d = fp16_to_fp32(b.d);
        o.set_scale(c, d, d);
      }
      return;
    case DType::Q4_1:
      for (int64_t c = 0; c < nb32; ++c) {
        const auto b = load_block<BlockQ4_1>(row, c);
        int8_t* q = o.q(c);
        for (int i = 0; i < 16; ++i) {
          q[i] = static_cast<int8_t>(b.qs[i] & 15);
          q[i + 16] = static_cast<int8_t>(b.qs[i] >> 4);
        }
        const float d = fp16_to_fp32(b.d);
        o.set_scale(c, d, d);
        o.set_min(c, fp16_to_fp32(b.m));
      }
      return;
    case DType::Q5_0:
    case DType::Q5_1: {
      const bool q51 = type == DType::Q5_1;
      for (int64_t c = 0; c < nb32; ++c) {
        uint16_t d16, m16 = 0;
        uint32_t qh;
        const uint8_t* qs;
        if (q51) {
          const auto* b = row + c * static_cast<int64_t>(sizeof(BlockQ5_1));
          std::memcpy(&d16, b, 2);
          std::memcpy(&m16, b + 2, 2);
          std::memcpy(&qh, b + 4, 4);
          qs = b + 8;
        } else {
          const auto* b = row + c * static_cast<int64_t>(sizeof(BlockQ5_0));
          std::memcpy(&d16, b, 2);
          std::memcpy(&qh, b + 2, 4);
          qs = b + 6;
        }
        unpack_q5_codes(qs, qh, q51 ? 0 : 16, o.q(c));
        const float d = fp16_to_fp32(d16);
        o.set_scale(c, d, d);
        if (q51) o.set_min(c, fp16_to_fp32(m16));
      }
      return;
    }
    case DType::Q8_0:
      for (int64_t c = 0; c < nb32; ++c) {
        const auto b = load_block<BlockQ8_0>(row, c);
        std::memcpy(o.q(c), b.qs, 32);
        const float d = fp16_to_fp32(b.d);
        o.set_scale(c, d, d);
      }
      return;
    case DType::Q4_K:
    case DType::Q5_K: {
      const bool q5 = type == DType::Q5_K;
      const int64_t nb = n_in / kQK_K;
      for (int64_t ib = 0; ib < nb; ++ib) {
        uint16_t d16, dmin16;
        const uint8_t* b = row + ib * static_cast<int64_t>(q5 ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K));
        std::memcpy(&d16, b, 2);
        std::memcpy(&dmin16, b + 2, 2);
        const uint8_t* scales = b + 4;
        const uint8_t* qh = q5 ? b + 4 + kKScaleSize : nullptr;
        const uint8_t* qs = b + 4 + kKScaleSize + (q5 ? kQK_K / 8 : 0);
        const float d = fp16_to_fp32(d16);
        const float dmin = fp16_to_fp32(dmin16);
        for (int j = 0; j < 8; ++j) {  // sub-block j: nibble j % 2 of qs[32 * (j / 2) + l]
          const int64_t c = ib * 8 + j;
          const uint8_t* src = qs + 32 * (j / 2);
          const int shift = (j % 2) * 4;
          int8_t* q = o.q(c);
          for (int l = 0; l < 32; ++l) {
            int v = (src[l] >> shift) & 15;
            if (q5) v |= ((qh[l] >> j) & 1) << 4;
            q[l] = static_cast<int8_t>(v);
          }
          uint8_t sc, m;
          k4_scale_min(j, scales, &sc, &m);
          const float s = d * static_cast<float>(sc);
          o.set_scale(c, s, s);
          o.set_min(c, -(dmin * static_cast<float>(m)));
        }
      }
      return;
    }
    case DType::Q6_K: {
      const int64_t nb = n_in / kQK_K;
      for (int64_t ib = 0; ib < nb; ++ib) {
        const auto b = load_block<BlockQ6_K>(row, ib);
        const float d = fp16_to_fp32(b.d);
        for (int h = 0; h < 2; ++h) {  // 128 elements: chunks k = 0..3 from ql/qh as below
          const uint8_t* ql = b.ql + 64 * h;
          const uint8_t* qh = b.qh + 32 * h;
          const int8_t* sc = b.scales + 8 * h;
          for (int k = 0; k < 4; ++k) {
            const int64_t c = ib * 8 + h * 4 + k;
            const uint8_t* lo = ql + (k % 2) * 32;
            const int lo_shift = (k / 2) * 4;
            int8_t* q = o.q(c);
            for (int l = 0; l < 32; ++l) {
              const int v = ((lo[l] >> lo_shift) & 15) | (((qh[l] >> (2 * k)) & 3) << 4);
              q[l] = static_cast<int8_t>(v - 32);
            }
            o.set_scale(c, d * static_cast<float>(sc[2 * k]), d * static_cast<float>(sc[2 * k + 1]));
          }
        }
      }
      return;
    }
    default:
      return;
  }
}

}  // namespace

size_t Panel::bytes(int64_t n_chunks) {
  const auto nc = static_cast<size_t>(n_chunks);
  return align64(nc * kPanelRows * kChunk) + align64(nc * kPanelRows * 8 * sizeof(float)) +
         align64(nc * kPanelRows * 2 * sizeof(float)) + align64(nc * kPanelRows * 8 * sizeof(int32_t));
}

void Panel::bind(void* storage, int64_t nc) {
  auto* base = static_cast<uint8_t*>(storage);
  const auto n = static_cast<size_t>(nc);
  n_chunks = nc;
  q = reinterpret_cast<int8_t*>(base);
  base += align64(n * kPanelRows * kChunk);
  s = reinterpret_cast<float*>(base);
  base += align64(n * kPanelRows * 8 * sizeof(float));
  mb = reinterpret_cast<float*>(base);
  base += align64(n * kPanelRows * 2 * sizeof(float));
  bias = reinterpret_cast<int32_t*>(base);
}

bool panel_has_offsets(DType t) {
  return t == DType::Q4_1 || t == DType::Q5_1 || t == DType::Q4_K || t == DType::Q5_K;
}

bool panel_supported(DType t) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void unpack_panel(DType type, const uint8_t* const* rows, int n_rows, int64_t n_in, bool bias_for_unsigned,
                  Panel& p) {
  const int64_t nc = p.n_chunks;
  std::memset(p.mb, 0, static_cast<size_t>(nc) * kPanelRows * 2 * sizeof(float));
  for (int r = 0; r < kPanelRows; ++r) {
    const RowOut o{&p, r};
    if (r < n_rows) {
      unpack_row(type, rows[r], n_in, o);
    } else {
      for (int64_t c = 0; c < nc; ++c) {
        std::memset(o.q(c), 0, kChunk);
        o.set_scale(c, 0.0f, 0.0f);
      }
    }
    if (!bias_for_unsigned) continue;
    for (int64_t c = 0; c < nc; ++c) {
      const int8_t* q = o.q(c);
      int32_t* b = p.bias + (c * kPanelRows + r) * 8;
      for (int l = 0; l < 8; ++l) b[l] = -128 * (q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3]);
    }
  }
  p.has_offsets = panel_has_offsets(type);
}

void unpack_acts(DType type, const void* x_q, int64_t n_in, Acts& a, int64_t t) {
  int8_t* q = a.q + static_cast<size_t>(t) * a.q_stride;
  float* yd = a.yd + static_cast<size_t>(t) * a.yd_stride;
  const auto* src = static_cast<const uint8_t*>(x_q);
  switch (type) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
      for (int64_t c = 0; c < n_in / 32; ++c) {
        BlockQ8_0 b;
        std::memcpy(&b, src + c * static_cast<int64_t>(sizeof(b)), sizeof(b));
        std::memcpy(q + c * 32, b.qs, 32);
        yd[2 * c] = 0.0f;  // these weights have no offset
        yd[2 * c + 1] = fp16_to_fp32(b.d);
      }
      return;
    case DType::Q4_1:
    case DType::Q5_1:
      for (int64_t c = 0; c < n_in / 32; ++c) {
        BlockQ8_1 b;
        std::memcpy(&b, src + c * static_cast<int64_t>(sizeof(b)), sizeof(b));
        std::memcpy(q + c * 32, b.qs, 32);
        yd[2 * c] = fp16_to_fp32(b.s);
        yd[2 * c + 1] = fp16_to_fp32(b.d);
      }
      return;
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      for (int64_t ib = 0; ib < n_in / kQK_K; ++ib) {
        BlockQ8_K b;
        std::memcpy(&b, src + ib * static_cast<int64_t>(sizeof(b)), sizeof(b));
        std::memcpy(q + ib * kQK_K, b.qs, kQK_K);
        for (int j = 0; j < 8; ++j) {
          const int64_t c = ib * 8 + j;
          yd[2 * c] = b.d * static_cast<float>(b.bsums[2 * j] + b.bsums[2 * j + 1]);
          yd[2 * c + 1] = b.d;
        }
      }
      return;
    default:
      return;
  }
}

void panel_tile_reference(const Panel& p, const int8_t* x, size_t x_stride, const float* yd, size_t yd_stride,
                          int n_tok, float* out) {
  for (int t = 0; t < n_tok; ++t) {
    const int8_t* xt = x + static_cast<size_t>(t) * x_stride;
    const float* ydt = yd + static_cast<size_t>(t) * yd_stride;
    for (int r = 0; r < kPanelRows; ++r) {
      float acc = 0.0f;
      for (int64_t c = 0; c < p.n_chunks; ++c) {
        const int8_t* q = p.q + (c * kPanelRows + r) * kChunk;
        const float* s = p.s + (c * kPanelRows + r) * 8;
        int lo = 0, hi = 0;
        for (int i = 0; i < 16; ++i) lo += q[i] * xt[c * kChunk + i];
        for (int i = 16; i < 32; ++i) hi += q[i] * xt[c * kChunk + i];
        acc += ydt[2 * c + 1] * (s[0] * static_cast<float>(lo) + s[4] * static_cast<float>(hi));
      }
      const float* mb = p.mb + static_cast<int64_t>(r) * 2 * p.n_chunks;
      if (p.has_offsets) {
        for (int64_t j = 0; j < 2 * p.n_chunks; ++j) acc += mb[j] * ydt[j];
      }
      out[t * kPanelRows + r] = acc;
    }
  }
}

}  // namespace flashlm::gemm
