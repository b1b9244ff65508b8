// Attention over a K/V cache stored as f16 or q8_0. Two checks per type and
// instruction set, on awkward shapes (blocks of 5 slots, shuffled tables, windows,
// softcap, decode and prompt chunks, GQA groups 1..8, head sizes 32..256):
//  * exactness of the reading: the tiled kernel on the stored rows equals the f32 tiled
//    kernel on the same rows dequantized by the traits table (to 1e-5 of max |v|, the
//    f32 path's own tolerance against its reference), and so does attention_paged_ref;
//  * the cost of storing: against f32 attention on the original rows, within a bound
//    derived from the actual rounding of each row (below).
// Also: rows written by kv_row_store round trip within each format's rounding, and the
// type check refuses heads that are not whole blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_tiles.h"
#include "quant/quant.h"

namespace flashlm {
namespace {

struct Shape {
  int n_head_kv, group, head_dim, block_size;
  int64_t n_past, n_q, window;
  float softcap;
};

std::vector<const AttnTileKernels*> all_kernels() {
  std::vector<const AttnTileKernels*> ks = {&attn_tile_kernels_scalar()};
  if (const AttnTileKernels* a = attn_tile_kernels_avx2()) ks.push_back(a);
  return ks;
}

// A paged cache of random K/V in f32, the same rows stored as `type`, and those stored
// rows dequantized back to f32.
struct TypedFixture {
  Shape sh;
  DType type;
  int n_head;
  int64_t kv_dim, n_slots;
  size_t row_bytes;
  std::vector<float> k, v, q;          // originals; q: [n_q, n_head * head_dim]
  std::vector<uint8_t> k_st, v_st;     // stored as `type`
  std::vector<float> k_dq, v_dq;       // stored rows read back by the traits table
  std::vector<int32_t> table;

  TypedFixture(const Shape& s, DType t, uint32_t seed) : sh(s), type(t) {
    n_head = sh.n_head_kv * sh.group;
    kv_dim = static_cast<int64_t>(sh.n_head_kv) * sh.head_dim;
    const int64_t n_pos = sh.n_past + sh.n_q;
    const int64_t n_blocks = (n_pos + sh.block_size - 1) / sh.block_size + 2;
    n_slots = n_blocks * sh.block_size;
    row_bytes = row_size(type, kv_dim);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    k.resize(static_cast<size_t>(n_slots * kv_dim));
    v.resize(k.size());
    // Per-row scales that differ by head, as real K rows do (outlier channels).
    for (size_t i = 0; i < k.size(); ++i) k[i] = nd(rng) * (1.0f + static_cast<float>(i % 7));
    for (auto& x : v) x = nd(rng);
    q.resize(static_cast<size_t>(sh.n_q * n_head * sh.head_dim));
    for (auto& x : q) x = nd(rng);
    k_st.resize(static_cast<size_t>(n_slots) * row_bytes);
    v_st.resize(k_st.size());
    k_dq.resize(k.size());
    v_dq.resize(v.size());
    for (int64_t i = 0; i < n_slots; ++i) {
      kv_row_store(type, k.data() + i * kv_dim, k_st.data() + static_cast<size_t>(i) * row_bytes, kv_dim);
      kv_row_store(type, v.data() + i * kv_dim, v_st.data() + static_cast<size_t>(i) * row_bytes, kv_dim);
      type_traits(type).to_float(k_st.data() + static_cast<size_t>(i) * row_bytes, k_dq.data() + i * kv_dim, kv_dim);
      type_traits(type).to_float(v_st.data() + static_cast<size_t>(i) * row_bytes, v_dq.data() + i * kv_dim, kv_dim);
    }
    table.resize(static_cast<size_t>(n_blocks));
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);
  }

  PagedKvView stored() const { return {k_st.data(), v_st.data(), type, kv_dim, sh.block_size, table.data()}; }
  PagedKvView dequantized() const { return {k_dq.data(), v_dq.data(), DType::F32, kv_dim, sh.block_size, table.data()}; }
  PagedKvView original() const { return {k.data(), v.data(), DType::F32, kv_dim, sh.block_size, table.data()}; }
  AttentionParams params() const {
    return {n_head, sh.n_head_kv, sh.head_dim, 1.0f / std::sqrt(static_cast<float>(sh.head_dim)), sh.softcap};
  }
  int64_t first_key(int64_t pos) const { return sh.window > 0 ? std::max<int64_t>(0, pos - sh.window + 1) : 0; }
  int64_t slot(int64_t pos) const {
    return static_cast<int64_t>(table[static_cast<size_t>(pos / sh.block_size)]) * sh.block_size + pos % sh.block_size;
  }

  // How far storing can move query t's head h output. With score errors |ds_j| <= e_s
  // (from the actual K rounding: scale * sum_i |q_i| |dk_ji|) the softmax weights move
  // by at most 2 e_s in sum (exp's slope, both numerator and normaliser) and, softcap
  // being 1-Lipschitz, no more with it; the output, a convex combination of V rows, then
  // moves by max|dv| + 2 e_s max|v|, plus a float-rounding allowance.
  double storing_bound(int64_t t, int h) const {
    const int64_t pos = sh.n_past + t;
    const int kvh = h / sh.group;
    const float* qh = q.data() + (t * n_head + h) * sh.head_dim;
    const double scale = 1.0 / std::sqrt(static_cast<double>(sh.head_dim));
    double e_s = 0.0, dv = 0.0, vmax = 0.0;
    for (int64_t p = first_key(pos); p <= pos; ++p) {
      const int64_t at = slot(p) * kv_dim + static_cast<int64_t>(kvh) * sh.head_dim;
      double e = 0.0;
      for (int i = 0; i < sh.head_dim; ++i) {
        const size_t x = static_cast<size_t>(at + i);
        e += std::fabs(static_cast<double>(qh[i])) * std::fabs(static_cast<double>(k[x]) - k_dq[x]);
        dv = std::max(dv, std::fabs(static_cast<double>(v[x]) - v_dq[x]));
        vmax = std::max(vmax, static_cast<double>(std::fabs(v[x])));
      }
      e_s = std::max(e_s, e * scale);
    }
    return dv + 2.0 * e_s * vmax + 1e-5 * vmax;
  }
};

std::vector<float> run_chunk(const TypedFixture& f, const PagedKvView& view, const AttnTileKernels& kern) {
  const int64_t q_dim = static_cast<int64_t>(f.n_head) * f.sh.head_dim;
  std::vector<float> out(static_cast<size_t>(f.sh.n_q * q_dim), 12345.0f);
  AttentionQueries qs{f.q.data(), q_dim, out.data(), q_dim, f.sh.n_past, f.sh.n_q};
  attention_chunk(qs, view, f.params(), f.sh.window, 0, f.n_head, kern);
  return out;
}

void check_type(const TypedFixture& f) {
  const int64_t q_dim = static_cast<int64_t>(f.n_head) * f.sh.head_dim;
  double vmax = 0.0;
  for (float x : f.v_dq) vmax = std::max(vmax, static_cast<double>(std::fabs(x)));
  const std::vector<float> exact = run_chunk(f, f.dequantized(), attn_tile_kernels_scalar());
  const std::vector<float> f32 = run_chunk(f, f.original(), attn_tile_kernels_scalar());
  std::vector<float> ref(static_cast<size_t>(q_dim));
  for (const AttnTileKernels* kern : all_kernels()) {
    SCOPED_TRACE(kern->name);
    const std::vector<float> got = run_chunk(f, f.stored(), *kern);
    for (int64_t t = 0; t < f.sh.n_q; ++t) {
      const int64_t pos = f.sh.n_past + t;
      attention_paged_ref(f.q.data() + t * q_dim, f.stored(), f.params(), f.first_key(pos), pos, 0, f.n_head,
                          ref.data());
      for (int h = 0; h < f.n_head; ++h) {
        const double bound = f.storing_bound(t, h);
        for (int i = 0; i < f.sh.head_dim; ++i) {
          const size_t x = static_cast<size_t>(t * q_dim + h * f.sh.head_dim + i);
          const size_t r = static_cast<size_t>(h * f.sh.head_dim + i);
          ASSERT_NEAR(got[x], exact[x], 1e-5 * vmax) << "query " << t << " head " << h << " element " << i;
          ASSERT_NEAR(ref[r], exact[x], 1e-5 * vmax) << "reference, query " << t << " head " << h << " element " << i;
          ASSERT_NEAR(got[x], f32[x], bound) << "against f32 K/V: query " << t << " head " << h << " element " << i;
        }
      }
    }
  }
}

const DType kStoredTypes[] = {DType::F16, DType::Q8_0};

TEST(AttentionKvTypes, StoredTypesMatchF32OnAwkwardShapes) {
  const std::vector<Shape> shapes = {
      {2, 3, 64, 32, 37, 19, 0, 0.0f},     // prompt chunk after keys straddling blocks
      {1, 4, 256, 32, 100, 1, 0, 0.0f},    // decode, Gemma-sized head
      {1, 8, 128, 5, 11, 45, 16, 0.0f},    // blocks of 5, window smaller than the chunk
      {2, 2, 96, 16, 3, 33, 0, 30.0f},     // softcap, head of three blocks
      {3, 1, 32, 7, 0, 40, 0, 0.0f},       // one block per head, group of one
      {1, 40, 64, 32, 5, 3, 0, 0.0f},      // group larger than a tile
  };
  uint32_t seed = 11;
  for (const Shape& s : shapes) {
    for (DType t : kStoredTypes) {
      SCOPED_TRACE(std::string(type_traits(t).name) + " head_dim=" + std::to_string(s.head_dim) +
                   " group=" + std::to_string(s.group) + " past=" + std::to_string(s.n_past) +
                   " n_q=" + std::to_string(s.n_q));
      check_type(TypedFixture(s, t, seed++));
    }
  }
}

TEST(AttentionKvTypes, F16AnyHeadSize) {
  // f16 has no blocks: heads of 20 and 40 (scalar tails of the converter).
  for (int hd : {20, 40}) {
    SCOPED_TRACE(hd);
    check_type(TypedFixture({2, 2, hd, 4, 2, 9, 3, 0.0f}, DType::F16, 5));
  }
}

TEST(AttentionKvTypes, RowsRoundTripWithinTheFormatsRounding) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n = 192;  // SmolLM2's kv_dim: 3 heads of 64
  std::vector<float> x(static_cast<size_t>(n)), y(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = nd(rng) * (i < 32 ? 40.0f : 1.0f);  // one loud block
  for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
    SCOPED_TRACE(type_traits(t).name);
    std::vector<uint8_t> row(row_size(t, n));
    kv_row_store(t, x.data(), row.data(), n);
    type_traits(t).to_float(row.data(), y.data(), n);
    for (int64_t b = 0; b < n; b += 32) {
      float amax = 0.0f;
      for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[static_cast<size_t>(i)]));
      for (int64_t i = b; i < b + 32; ++i) {
        const float xi = x[static_cast<size_t>(i)];
        // f16: half an ulp. q8_0: half a step d = amax / 127, plus |q| <= 127 times the
        // step's own f16 rounding (d 2^-11).
        double tol = 0.0;
        if (t == DType::F16) tol = std::fabs(xi) * 0x1p-11;
        if (t == DType::Q8_0) tol = amax / 127.0 * (0.5 + 127.0 * 0x1p-11) + 1e-7;
        ASSERT_NEAR(y[static_cast<size_t>(i)], xi, tol) << "element " << i;
      }
    }
  }
}

// An f16 cache row is the scalar rounding's bits (the F16C store where the CPU has it),
// at every length and around the format's edges: subnormals, ties, overflow, infinities.
TEST(AttentionKvTypes, F16StoreRoundsAsTheScalarConversion) {
  std::mt19937 rng(12);
  std::vector<float> x = {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, -70000.0f, 1e-8f, -3e-5f, 5.96e-8f, 2.98e-8f,
                          6.1e-5f, 1.0f + 1.0f / 2048.0f, 1.0f + 3.0f / 2048.0f, INFINITY, -INFINITY};
  std::uniform_real_distribution<float> mag(-30.0f, 17.0f);
  while (x.size() < 203) x.push_back((rng() & 1 ? -1.0f : 1.0f) * std::exp2(mag(rng)));
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{15}, x.size()}) {
    std::vector<uint16_t> fast(n), ref(n);
    kv_row_store(DType::F16, x.data(), fast.data(), static_cast<int64_t>(n));
    type_traits(DType::F16).from_float(x.data(), ref.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(fast[i], ref[i]) << "x=" << x[i] << " n=" << n;
  }
}

TEST(AttentionKvTypes, TypeCheckRefusesPartialBlocks) {
  EXPECT_TRUE(attention_kv_type_check(DType::F32, 20).is_ok());
  EXPECT_TRUE(attention_kv_type_check(DType::F16, 20).is_ok());
  EXPECT_TRUE(attention_kv_type_check(DType::Q8_0, 64).is_ok());
  EXPECT_TRUE(attention_kv_type_check(DType::Q8_0, 256).is_ok());
  EXPECT_FALSE(attention_kv_type_check(DType::Q4_0, 256).is_ok());  // measured too lossy, not offered
  const Status partial = attention_kv_type_check(DType::Q8_0, 80);
  ASSERT_FALSE(partial.is_ok());
  EXPECT_NE(partial.message().find("head_dim is 80"), std::string::npos) << partial.message();
  EXPECT_FALSE(attention_kv_type_check(DType::F16, kAttnMaxHeadDim + 32).is_ok());
  EXPECT_FALSE(attention_kv_type_check(DType::Q4_K, 256).is_ok());
}

}  // namespace
}  // namespace flashlm
