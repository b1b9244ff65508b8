// Scalar reference integer dot products (ggml's generic kernels in ggml-cpu/quants.c,
// same products, same per-block float operations) and the per-CPU dispatch table.
//
// Block sums are exact integers, so a kernel's result differs from ggml's only in how
// the per-block float terms are added up. Blocks are memcpy'd out because weight rows
// in a mapped file need not be aligned for the struct.
#include "kernels/cpu/vec_dot.h"

#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/avx2/avx2_kernels.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/neon/neon_kernels.h"
#include "quant/quant.h"
#include "quant/quant_ref.h"
#include "util/fp16.h"

namespace flashlm {
namespace {

using namespace quant;

template <typename Block>
Block load_block(const void* base, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(base) + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return b;
}

float h2f(uint16_t h) { return fp16_to_fp32(h); }

// ---- activation quantization ----
// Q8_0/Q8_1 activations are quantized the way llama.cpp does it on x86 (the AVX2
// quantize_row_q8_0/q8_1 our goldens come from), which differs from ggml's reference
// C in two details: the inverse scale is 127 / amax rather than 1 / (amax / 127), and
// values round half to even. Either way |x - d q| <= d / 2 up to float rounding.

template <typename Block>
void quantize_block_q8_x86(const float* x, Block& b, int* sum) {
  float amax = 0.0f;
  for (int64_t j = 0; j < Block::kElems; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  b.d = fp32_to_fp16(d);
  *sum = 0;
  for (int64_t j = 0; j < Block::kElems; ++j) {
    const float v = x[j] * id;
    // |v| <= 127 for finite input; the clamp only keeps NaN/inf rows defined.
    const int q = std::isnan(v) ? 0 : (int)std::nearbyint(std::fmax(-127.0f, std::fmin(127.0f, v)));
    b.qs[j] = (int8_t)q;
    *sum += q;
  }
  if constexpr (requires { b.s; }) b.s = fp32_to_fp16(d * (float)*sum);
}

template <typename Block>
void quantize_row_q8_x86(const float* x, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / Block::kElems; ++i) {
    Block b;
    int sum;
    quantize_block_q8_x86(x + i * Block::kElems, b, &sum);
    std::memcpy(p + i * (int64_t)sizeof(Block), &b, sizeof(Block));
  }
}

// ---- 32-element formats ----

float dot_q4_0_q8_0(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    const auto x = load_block<BlockQ4_0>(w, i);
    const auto y = load_block<BlockQ8_0>(xq, i);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += ((x.qs[j] & 0x0F) - 8) * y.qs[j] + ((x.qs[j] >> 4) - 8) * y.qs[j + 16];
    }
    sumf += (float)sumi * h2f(x.d) * h2f(y.d);
  }
  return sumf;
}

float dot_q4_1_q8_1(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK4_1; ++i) {
    const auto x = load_block<BlockQ4_1>(w, i);
    const auto y = load_block<BlockQ8_1>(xq, i);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) sumi += (x.qs[j] & 0x0F) * y.qs[j] + (x.qs[j] >> 4) * y.qs[j + 16];
    // The offset m meets sum(x) through s = d_y * sum(q_y): one product per block.
    sumf += (h2f(x.d) * h2f(y.d)) * (float)sumi + h2f(x.m) * h2f(y.s);
  }
  return sumf;
}

// 5-bit value j of a Q5_0/Q5_1 block, before any offset (0..31).
template <typename Block>
int q5_value(const Block& x, uint32_t qh, int j) {
  const int nib = j < 16 ? (x.qs[j] & 0x0F) : (x.qs[j - 16] >> 4);
  return nib | (int)(((qh >> j) & 1u) << 4);
}

float dot_q5_0_q8_0(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK5_0; ++i) {
    const auto x = load_block<BlockQ5_0>(w, i);
    const auto y = load_block<BlockQ8_0>(xq, i);
    uint32_t qh;
    std::memcpy(&qh, x.qh, 4);
    int sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += (q5_value(x, qh, j) - 16) * y.qs[j];
    sumf += (h2f(x.d) * h2f(y.d)) * (float)sumi;
  }
  return sumf;
}

float dot_q5_1_q8_1(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK5_1; ++i) {
    const auto x = load_block<BlockQ5_1>(w, i);
    const auto y = load_block<BlockQ8_1>(xq, i);
    uint32_t qh;
    std::memcpy(&qh, x.qh, 4);
    int sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += q5_value(x, qh, j) * y.qs[j];
    sumf += (h2f(x.d) * h2f(y.d)) * (float)sumi + h2f(x.m) * h2f(y.s);
  }
  return sumf;
}

float dot_q8_0_q8_0(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const auto x = load_block<BlockQ8_0>(w, i);
    const auto y = load_block<BlockQ8_0>(xq, i);
    int sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += x.qs[j] * y.qs[j];
    sumf += (float)sumi * (h2f(x.d) * h2f(y.d));
  }
  return sumf;
}

// ---- K-quants against Q8_K ----
// Integer bounds: |scale * q * q8| * 256 stays below 2^27 for every format here.

float dot_q2_K_q8_K(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const auto x = load_block<BlockQ2_K>(w, i);
    const auto y = load_block<BlockQ8_K>(xq, i);
    int summs = 0;  // the mins, through the activation's 16-element sums
    for (int j = 0; j < 16; ++j) summs += y.bsums[j] * (x.scales[j] >> 4);
    const uint8_t* q2 = x.qs;
    const int8_t* q8 = y.qs;
    int isum = 0;
    int is = 0;
    for (int half = 0; half < 2; ++half) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int sub = 0; sub < 2; ++sub) {
          int s = 0;
          for (int l = 16 * sub; l < 16 * sub + 16; ++l) s += q8[l] * ((q2[l] >> shift) & 3);
          isum += (x.scales[is++] & 0xF) * s;
        }
        q8 += 32;
      }
      q2 += 32;
    }
    const float dall = y.d * h2f(x.d);
    const float dmin = y.d * h2f(x.dmin);
    sumf += dall * (float)isum - dmin * (float)summs;
  }
  return sumf;
}

float dot_q3_K_q8_K(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const auto x = load_block<BlockQ3_K>(w, i);
    const auto y = load_block<BlockQ8_K>(xq, i);
    int scales[16];  // six-bit: low nibbles from bytes 0..7, high 2 bits from 8..11
    for (int k = 0; k < 16; ++k) {
      const int lo = (x.scales[k % 8] >> (4 * (k / 8))) & 0xF;
      const int hi = (x.scales[8 + k % 4] >> (2 * (k / 4))) & 3;
      scales[k] = (lo | (hi << 4)) - 32;
    }
    const uint8_t* q3 = x.qs;
    const int8_t* q8 = y.qs;
    uint8_t m = 1;
    int is = 0;
    int isum = 0;
    for (int half = 0; half < 2; ++half) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int sub = 0; sub < 2; ++sub) {
          int s = 0;
          for (int l = 16 * sub; l < 16 * sub + 16; ++l) {
            s += q8[l] * (((q3[l] >> shift) & 3) - ((x.hmask[l] & m) ? 0 : 4));
          }
          isum += scales[is++] * s;
        }
        q8 += 32;
        m = (uint8_t)(m << 1);
      }
      q3 += 32;
    }
    sumf += (h2f(x.d) * y.d) * (float)isum;
  }
  return sumf;
}

// Q4_K and Q5_K share everything but the fifth bit (qh == nullptr for Q4_K).
float dot_q45_K(const uint8_t* scales_packed, uint16_t d, uint16_t dmin, const uint8_t* qs, const uint8_t* qh,
                const BlockQ8_K& y) {
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) k4_scale_min(j, scales_packed, &sc[j], &mn[j]);
  int summs = 0;
  for (int j = 0; j < 16; ++j) summs += y.bsums[j] * mn[j / 2];
  int isum = 0;
  for (int j = 0; j < 8; ++j) {  // sub-block j: 32 elements, nibble (j & 1) of qs[32 (j / 2) ..]
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = 4 * (j & 1);
    int s = 0;
    for (int l = 0; l < 32; ++l) {
      int v = (q[l] >> shift) & 0xF;
      if (qh != nullptr) v += ((qh[l] >> j) & 1) << 4;
      s += v * y.qs[32 * j + l];
    }
    isum += sc[j] * s;
  }
  return (h2f(d) * y.d) * (float)isum - (h2f(dmin) * y.d) * (float)summs;
}

float dot_q4_K_q8_K(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const auto x = load_block<BlockQ4_K>(w, i);
    const auto y = load_block<BlockQ8_K>(xq, i);
    sumf += dot_q45_K(x.scales, x.d, x.dmin, x.qs, nullptr, y);
  }
  return sumf;
}

float dot_q5_K_q8_K(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const auto x = load_block<BlockQ5_K>(w, i);
    const auto y = load_block<BlockQ8_K>(xq, i);
    sumf += dot_q45_K(x.scales, x.d, x.dmin, x.qs, x.qh, y);
  }
  return sumf;
}

float dot_q6_K_q8_K(const void* w, const void* xq, int64_t n) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const auto x = load_block<BlockQ6_K>(w, i);
    const auto y = load_block<BlockQ8_K>(xq, i);
    int a[kQK_K];  // 6-bit values minus 32, in element order
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x.ql + 64 * half;
      const uint8_t* qh = x.qh + 32 * half;
      int* o = a + 128 * half;
      for (int l = 0; l < 32; ++l) {
        o[l + 0] = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        o[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        o[l + 64] = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        o[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      }
    }
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 16 * j; l < 16 * j + 16; ++l) s += a[l] * y.qs[l];
      isum += x.scales[j] * s;
    }
    sumf += (h2f(x.d) * y.d) * (float)isum;
  }
  return sumf;
}

// ---- float formats: products in f32 (exact for f16/bf16 inputs), sums in double, as
// ggml's scalar ggml_vec_dot_f16/bf16/f32 ----

// Shared by f16 and bf16: 2-byte values widened by Conv.
template <float (*Conv)(uint16_t)>
float dot_half(const void* w, const void* xq, int64_t n) {
  const auto* a = static_cast<const uint8_t*>(w);
  const auto* b = static_cast<const uint8_t*>(xq);
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    uint16_t ha, hb;
    std::memcpy(&ha, a + 2 * i, 2);
    std::memcpy(&hb, b + 2 * i, 2);
    acc += (double)(Conv(ha) * Conv(hb));
  }
  return (float)acc;
}

float dot_f16_f16(const void* w, const void* xq, int64_t n) { return dot_half<fp16_to_fp32>(w, xq, n); }
float dot_bf16_bf16(const void* w, const void* xq, int64_t n) { return dot_half<bf16_to_fp32>(w, xq, n); }

float dot_f32_f32(const void* w, const void* xq, int64_t n) {
  const auto* a = static_cast<const uint8_t*>(w);
  const auto* b = static_cast<const uint8_t*>(xq);
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    float fa, fb;
    std::memcpy(&fa, a + 4 * i, 4);
    std::memcpy(&fb, b + 4 * i, 4);
    acc += (double)fa * (double)fb;
  }
  return (float)acc;
}

// ---- tables ----

using Table = std::array<VecDotTraits, kDTypeIdLimit>;

template <typename Act>
constexpr VecDotTraits quant_entry(DType act, VecDotFn dot) {
  VecDotTraits t;
  t.vec_dot_type = act;
  t.block_size = Act::kElems;
  t.block_bytes = sizeof(Act);
  if constexpr (std::is_same_v<Act, BlockQ8_K>) {
    t.quantize_row = &quantize_row<Act>;  // ggml's reference: x86 llama.cpp runs the same
  } else {
    t.quantize_row = &quantize_row_q8_x86<Act>;
  }
  t.vec_dot = dot;
  return t;
}

constexpr VecDotTraits float_entry(DType act, size_t bytes, QuantizeRowFn q, VecDotFn dot) {
  VecDotTraits t;
  t.vec_dot_type = act;
  t.block_size = 1;
  t.block_bytes = bytes;
  t.quantize_row = q;
  t.vec_dot = dot;
  return t;
}

constexpr void set(Table& t, DType w, const VecDotTraits& e) { t[static_cast<uint32_t>(w)] = e; }

constexpr Table make_reference_table() {
  Table t{};
  set(t, DType::F32, float_entry(DType::F32, 4, &f32_from_float, &dot_f32_f32));
  set(t, DType::F16, float_entry(DType::F16, 2, &f16_from_float, &dot_f16_f16));
  set(t, DType::BF16, float_entry(DType::BF16, 2, &bf16_from_float, &dot_bf16_bf16));
  set(t, DType::Q4_0, quant_entry<BlockQ8_0>(DType::Q8_0, &dot_q4_0_q8_0));
  set(t, DType::Q4_1, quant_entry<BlockQ8_1>(DType::Q8_1, &dot_q4_1_q8_1));
  set(t, DType::Q5_0, quant_entry<BlockQ8_0>(DType::Q8_0, &dot_q5_0_q8_0));
  set(t, DType::Q5_1, quant_entry<BlockQ8_1>(DType::Q8_1, &dot_q5_1_q8_1));
  set(t, DType::Q8_0, quant_entry<BlockQ8_0>(DType::Q8_0, &dot_q8_0_q8_0));
  set(t, DType::Q2_K, quant_entry<BlockQ8_K>(DType::Q8_K, &dot_q2_K_q8_K));
  set(t, DType::Q3_K, quant_entry<BlockQ8_K>(DType::Q8_K, &dot_q3_K_q8_K));
  set(t, DType::Q4_K, quant_entry<BlockQ8_K>(DType::Q8_K, &dot_q4_K_q8_K));
  set(t, DType::Q5_K, quant_entry<BlockQ8_K>(DType::Q8_K, &dot_q5_K_q8_K));
  set(t, DType::Q6_K, quant_entry<BlockQ8_K>(DType::Q8_K, &dot_q6_K_q8_K));
  return t;
}

constexpr Table kReference = make_reference_table();
constexpr VecDotTraits kNone{};

#if defined(FLASHLM_HAVE_AVX2)
float avx2_dot_f32_f32(const void* w, const void* xq, int64_t n) {
  return avx2::dot_f32(static_cast<const float*>(w), static_cast<const float*>(xq), n);
}
#endif

#if defined(FLASHLM_HAVE_NEON)
float neon_dot_f32_f32(const void* w, const void* xq, int64_t n) {
  return neon::dot_f32(static_cast<const float*>(w), static_cast<const float*>(xq), n);
}
#endif

// The reference table with one level's kernels in place of the scalar ones. Building a
// table calls nothing, so it is safe for levels this CPU lacks; callers check first.
Table make_table(CpuIsa isa) {
  Table t = kReference;
  [[maybe_unused]] auto with = [&](DType w, VecDotFn f, VecDotX8Fn f8) {
    t[static_cast<uint32_t>(w)].vec_dot = f;
    t[static_cast<uint32_t>(w)].vec_dot_x8 = f8;
  };
  [[maybe_unused]] auto quantizer = [&](DType w, QuantizeRowFn q) { t[static_cast<uint32_t>(w)].quantize_row = q; };
#if defined(FLASHLM_HAVE_AVX2)
  if (isa == CpuIsa::kAvx2) {
    with(DType::F32, &avx2_dot_f32_f32, nullptr);
    with(DType::F16, &avx2::vec_dot_f16_f16, nullptr);
    with(DType::BF16, &avx2::vec_dot_bf16_bf16, nullptr);
    with(DType::Q4_0, &avx2::vec_dot_q4_0_q8_0, &avx2::vec_dot_q4_0_q8_0_x8);
    with(DType::Q4_1, &avx2::vec_dot_q4_1_q8_1, &avx2::vec_dot_q4_1_q8_1_x8);
    with(DType::Q5_0, &avx2::vec_dot_q5_0_q8_0, &avx2::vec_dot_q5_0_q8_0_x8);
    with(DType::Q5_1, &avx2::vec_dot_q5_1_q8_1, &avx2::vec_dot_q5_1_q8_1_x8);
    with(DType::Q8_0, &avx2::vec_dot_q8_0_q8_0, &avx2::vec_dot_q8_0_q8_0_x8);
    with(DType::Q4_K, &avx2::vec_dot_q4_K_q8_K, &avx2::vec_dot_q4_K_q8_K_x8);
    with(DType::Q5_K, &avx2::vec_dot_q5_K_q8_K, &avx2::vec_dot_q5_K_q8_K_x8);
    with(DType::Q6_K, &avx2::vec_dot_q6_K_q8_K, &avx2::vec_dot_q6_K_q8_K_x8);
    for (DType w : {DType::Q4_0, DType::Q5_0, DType::Q8_0}) quantizer(w, &avx2::quantize_row_q8_0);
    for (DType w : {DType::Q4_1, DType::Q5_1}) quantizer(w, &avx2::quantize_row_q8_1);
    for (DType w : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
      quantizer(w, &avx2::quantize_row_q8_K);
    }
  }
#endif
#if defined(FLASHLM_HAVE_NEON)
  if (isa == CpuIsa::kNeon || isa == CpuIsa::kNeonDotprod) {
    const neon::IntDotKernels& k =
        isa == CpuIsa::kNeonDotprod ? neon::int_dot_kernels_dotprod() : neon::int_dot_kernels_base();
    with(DType::F32, &neon_dot_f32_f32, nullptr);
    with(DType::F16, &neon::vec_dot_f16_f16, nullptr);
    with(DType::BF16, &neon::vec_dot_bf16_bf16, nullptr);
    with(DType::Q4_0, k.q4_0.one, k.q4_0.x8);
    with(DType::Q4_1, k.q4_1.one, k.q4_1.x8);
    with(DType::Q5_0, k.q5_0.one, k.q5_0.x8);
    with(DType::Q5_1, k.q5_1.one, k.q5_1.x8);
    with(DType::Q8_0, k.q8_0.one, k.q8_0.x8);
    with(DType::Q4_K, k.q4_K.one, k.q4_K.x8);
    with(DType::Q5_K, k.q5_K.one, k.q5_K.x8);
    with(DType::Q6_K, k.q6_K.one, k.q6_K.x8);
    for (DType w : {DType::Q4_0, DType::Q5_0, DType::Q8_0}) quantizer(w, &neon::quantize_row_q8_0);
    for (DType w : {DType::Q4_1, DType::Q5_1}) quantizer(w, &neon::quantize_row_q8_1);
    for (DType w : {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
      quantizer(w, &neon::quantize_row_q8_K);
    }
  }
#endif
  return t;
}

constexpr size_t kNumIsas = static_cast<size_t>(CpuIsa::kNeonDotprod) + 1;

// One table per level, indexed by CpuIsa, built once at first use (the tables of levels
// this CPU lacks are never handed out).
const std::array<Table, kNumIsas>& tables() {
  static const std::array<Table, kNumIsas> all = [] {
    std::array<Table, kNumIsas> a{};
    for (size_t i = 0; i < kNumIsas; ++i) a[i] = make_table(static_cast<CpuIsa>(i));
    return a;
  }();
  return all;
}

}  // namespace

const VecDotTraits& vec_dot_traits_reference(DType weight_type) {
  const auto id = static_cast<uint32_t>(weight_type);
  return id < kDTypeIdLimit ? kReference[id] : kNone;
}

const VecDotTraits* vec_dot_traits_for(CpuIsa isa, DType weight_type) {
  if (!cpu_supports(isa)) return nullptr;
  const auto id = static_cast<uint32_t>(weight_type);
  return id < kDTypeIdLimit ? &tables()[static_cast<size_t>(isa)][id] : &kNone;
}

const VecDotTraits& vec_dot_traits(DType weight_type) {
  static const Table& fast = tables()[static_cast<size_t>(cpu_best_isa())];  // CPU probed once
  const auto id = static_cast<uint32_t>(weight_type);
  return id < kDTypeIdLimit ? fast[id] : kNone;
}

}  // namespace flashlm
