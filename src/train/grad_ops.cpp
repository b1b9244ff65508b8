#include "train/grad_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/rope.h"
#include "kernels/cpu/sgemm.h"

namespace flashlm::train {

// y = x . w^T: M = T, N = n_out, K = n_in, w stored [N][K].
void matmul_fwd(const float* x, const float* w, float* y, int64_t T, int64_t n_in, int64_t n_out, ThreadPool& pool) {
  sgemm({T, n_out, n_in, x, n_in, false, w, n_in, true, y, n_out, 0.0f}, pool);
}

// dx += dy . w (w stored [n_out][n_in] = [K][N]); dw += dy^T . x (dy stored [T][n_out] =
// [K][M], x [T][n_in] = [K][N]).
void matmul_bwd(const float* x, const float* w, const float* dy, float* dx, float* dw, int64_t T, int64_t n_in,
                int64_t n_out, ThreadPool& pool) {
  if (dx != nullptr) sgemm({T, n_in, n_out, dy, n_out, false, w, n_in, false, dx, n_in, 1.0f}, pool);
  if (dw != nullptr) sgemm({n_out, n_in, T, dy, n_out, true, x, n_in, false, dw, n_in, 1.0f}, pool);
}

void rms_norm_fwd(const float* x, const float* w, float* y, float* rstd, int64_t T, int64_t n, float eps) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * n;
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xt[i]) * xt[i];
    const float r = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
    rstd[t] = r;
    for (int64_t i = 0; i < n; ++i) y[t * n + i] = xt[i] * r * w[i];
  }
}

// y_i = w_i x_i r with r = (mean(x^2) + eps)^-1/2, so with g_i = dy_i w_i:
// dx_i = r g_i - r^3 x_i (g . x) / n and dw_i = dy_i x_i r.
void rms_norm_bwd(const float* x, const float* w, const float* rstd, const float* dy, float* dx, float* dw, int64_t T,
                  int64_t n) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * n;
    const float* dyt = dy + t * n;
    const float r = rstd[t];
    double gx = 0.0;
    for (int64_t i = 0; i < n; ++i) gx += static_cast<double>(dyt[i]) * w[i] * xt[i];
    const float c = static_cast<float>(gx / static_cast<double>(n)) * r * r * r;
    for (int64_t i = 0; i < n; ++i) {
      dx[t * n + i] += r * dyt[i] * w[i] - c * xt[i];
      if (dw != nullptr) dw[i] += dyt[i] * xt[i] * r;
    }
  }
}

void bias_fwd(float* y, const float* b, int64_t T, int64_t n) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += b[i];
  }
}

void bias_bwd(const float* dy, float* db, int64_t T, int64_t n) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < n; ++i) db[i] += dy[t * n + i];
  }
}

namespace {

void rope_rows(float* x, const float* cs, int64_t T, int64_t n_head, int64_t head_dim, int64_t n_rot,
               ops::RopeStyle style, bool inverse) {
  std::vector<float> inv(static_cast<size_t>(n_rot));
  for (int64_t t = 0; t < T; ++t) {
    const float* c = cs + t * n_rot;
    if (inverse) {  // R(-theta): the same cosines, negated sines
      for (int64_t i = 0; i < n_rot / 2; ++i) {
        inv[static_cast<size_t>(i)] = c[i];
        inv[static_cast<size_t>(n_rot / 2 + i)] = -c[n_rot / 2 + i];
      }
      c = inv.data();
    }
    for (int64_t h = 0; h < n_head; ++h) ops::rope_apply(x + (t * n_head + h) * head_dim, n_rot, style, c);
  }
}

}  // namespace

void rope_fwd(float* x, const float* cs, int64_t T, int64_t n_head, int64_t head_dim, int64_t n_rot,
              ops::RopeStyle style) {
  rope_rows(x, cs, T, n_head, head_dim, n_rot, style, false);
}

void rope_bwd(float* dx, const float* cs, int64_t T, int64_t n_head, int64_t head_dim, int64_t n_rot,
              ops::RopeStyle style) {
  rope_rows(dx, cs, T, n_head, head_dim, n_rot, style, true);
}

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

float sigmoid(float g) { return 1.0f / (1.0f + std::exp(-g)); }

}  // namespace

void glu_fwd(Glu kind, const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float a = kind == Glu::kSilu ? g * sigmoid(g)
                                       : 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + kGeluCubic * g * g * g)));
    y[i] = a * up[i];
  }
}

void glu_bwd(Glu kind, const float* gate, const float* up, const float* dy, float* dgate, float* dup, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    float a, da;
    if (kind == Glu::kSilu) {
      const float s = sigmoid(g);
      a = g * s;
      da = s * (1.0f + g * (1.0f - s));
    } else {
      const float th = std::tanh(kSqrt2OverPi * (g + kGeluCubic * g * g * g));
      a = 0.5f * g * (1.0f + th);
      da = 0.5f * (1.0f + th) + 0.5f * g * (1.0f - th * th) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * g * g);
    }
    dgate[i] += dy[i] * up[i] * da;
    dup[i] += dy[i] * a;
  }
}

void softcap_fwd(const float* x, float* y, int64_t n, float c) {
  for (int64_t i = 0; i < n; ++i) y[i] = c * std::tanh(x[i] / c);
}

// d/dx c tanh(x / c) = 1 - tanh^2 = 1 - (y / c)^2.
void softcap_bwd(const float* y, const float* dy, float* dx, int64_t n, float c) {
  for (int64_t i = 0; i < n; ++i) {
    const float th = y[i] / c;
    dx[i] += dy[i] * (1.0f - th * th);
  }
}

namespace {

bool attends(const AttentionShape& a, int64_t i, int64_t j) { return j <= i && (a.window <= 0 || i - j < a.window); }

float raw_score(const AttentionShape& a, const float* qi, const float* kj) {
  return a.scale * ops::dot(qi, kj, a.head_dim);
}

}  // namespace

void attention_fwd_reference(const AttentionShape& a, const float* q, const float* k, const float* v, float* out,
                             float* probs) {
  const int64_t hd = a.head_dim;
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t q_stride = a.n_head * hd;
  const int64_t kv_stride = a.n_head_kv * hd;
  for (int64_t h = 0; h < a.n_head; ++h) {
    const int64_t hk = h / group;
    for (int64_t i = 0; i < a.T; ++i) {
      float* p = probs + (h * a.T + i) * a.T;
      const float* qi = q + i * q_stride + h * hd;
      float mx = -INFINITY;
      for (int64_t j = 0; j < a.T; ++j) {
        if (!attends(a, i, j)) {
          p[j] = -INFINITY;
          continue;
        }
        float s = raw_score(a, qi, k + j * kv_stride + hk * hd);
        if (a.softcap > 0.0f) s = a.softcap * std::tanh(s / a.softcap);
        p[j] = s;
        mx = std::max(mx, s);
      }
      double sum = 0.0;
      for (int64_t j = 0; j < a.T; ++j) {
        p[j] = attends(a, i, j) ? std::exp(p[j] - mx) : 0.0f;
        sum += p[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      float* o = out + i * q_stride + h * hd;
      std::fill(o, o + hd, 0.0f);
      for (int64_t j = 0; j < a.T; ++j) {
        p[j] *= inv;
        if (p[j] == 0.0f) continue;
        const float* vj = v + j * kv_stride + hk * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] += p[j] * vj[d];
      }
    }
  }
}

// With P the probabilities and dP_ij = dout_i . v_j: dv_j += P_ij dout_i,
// dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik), through the soft-cap's 1 - tanh^2, then
// dq_i += scale dS_ij k_j and dk_j += scale dS_ij q_i.
void attention_bwd_reference(const AttentionShape& a, const float* q, const float* k, const float* v,
                             const float* probs, const float* dout, float* dq, float* dk, float* dv) {
  const int64_t hd = a.head_dim;
  const int64_t group = a.n_head / a.n_head_kv;
  const int64_t q_stride = a.n_head * hd;
  const int64_t kv_stride = a.n_head_kv * hd;
  std::vector<float> dp(static_cast<size_t>(a.T));
  for (int64_t h = 0; h < a.n_head; ++h) {
    const int64_t hk = h / group;
    for (int64_t i = 0; i < a.T; ++i) {
      const float* p = probs + (h * a.T + i) * a.T;
      const float* doi = dout + i * q_stride + h * hd;
      const float* qi = q + i * q_stride + h * hd;
      double pdp = 0.0;
      for (int64_t j = 0; j < a.T; ++j) {
        dp[static_cast<size_t>(j)] = 0.0f;
        if (p[j] == 0.0f) continue;
        const float* vj = v + j * kv_stride + hk * hd;
        float* dvj = dv + j * kv_stride + hk * hd;
        dp[static_cast<size_t>(j)] = ops::dot(doi, vj, hd);
        for (int64_t d = 0; d < hd; ++d) dvj[d] += p[j] * doi[d];
        pdp += static_cast<double>(p[j]) * dp[static_cast<size_t>(j)];
      }
      float* dqi = dq + i * q_stride + h * hd;
      for (int64_t j = 0; j < a.T; ++j) {
        if (p[j] == 0.0f) continue;
        const float* kj = k + j * kv_stride + hk * hd;
        float ds = p[j] * (dp[static_cast<size_t>(j)] - static_cast<float>(pdp));
        if (a.softcap > 0.0f) {
          const float th = std::tanh(raw_score(a, qi, kj) / a.softcap);
          ds *= 1.0f - th * th;
        }
        ds *= a.scale;
        float* dkj = dk + j * kv_stride + hk * hd;
        for (int64_t d = 0; d < hd; ++d) {
          dqi[d] += ds * kj[d];
          dkj[d] += ds * qi[d];
        }
      }
    }
  }
}

// The same as per-head GEMMs (scores, P V, and the four products of the backward) on the
// pool, with the row-wise softmax and its backward between them. The GEMMs compute the
// masked half of each score matrix too (causal: about twice the useful work), which at
// GEMM speed costs far less than the scalar loops above.
void attention_fwd(const AttentionShape& a, const float* q, const float* k, const float* v, float* out, float* probs,
                   ThreadPool& pool) {
  const int64_t T = a.T, hd = a.head_dim, group = a.n_head / a.n_head_kv;
  const int64_t q_stride = a.n_head * hd, kv_stride = a.n_head_kv * hd;
  for (int64_t h = 0; h < a.n_head; ++h) {
    const int64_t hk = h / group;
    float* p = probs + h * T * T;
    // S = scale Q K^T
    sgemm({T, T, hd, q + h * hd, q_stride, false, k + hk * hd, kv_stride, true, p, T, 0.0f}, pool);
    pool.parallel_for(T, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) {
        float* pi = p + i * T;
        float mx = -INFINITY;
        for (int64_t j = 0; j < T; ++j) {
          if (!attends(a, i, j)) continue;
          float sc = a.scale * pi[j];
          if (a.softcap > 0.0f) sc = a.softcap * std::tanh(sc / a.softcap);
          pi[j] = sc;
          mx = std::max(mx, sc);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < T; ++j) {
          pi[j] = attends(a, i, j) ? std::exp(pi[j] - mx) : 0.0f;
          sum += pi[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < T; ++j) pi[j] *= inv;
      }
    });
    // O = P V
    sgemm({T, hd, T, p, T, false, v + hk * hd, kv_stride, false, out + h * hd, q_stride, 0.0f}, pool);
  }
}

void attention_bwd(const AttentionShape& a, const float* q, const float* k, const float* v, const float* probs,
                   const float* dout, float* dq, float* dk, float* dv, ThreadPool& pool) {
  const int64_t T = a.T, hd = a.head_dim, group = a.n_head / a.n_head_kv;
  const int64_t q_stride = a.n_head * hd, kv_stride = a.n_head_kv * hd;
  std::vector<float> ds(static_cast<size_t>(T * T)), raw(a.softcap > 0.0f ? static_cast<size_t>(T * T) : 0);
  for (int64_t h = 0; h < a.n_head; ++h) {
    const int64_t hk = h / group;
    const float* p = probs + h * T * T;
    // dV += P^T dO; dP = dO V^T (into ds)
    sgemm({T, hd, T, p, T, true, dout + h * hd, q_stride, false, dv + hk * hd, kv_stride, 1.0f}, pool);
    sgemm({T, T, hd, dout + h * hd, q_stride, false, v + hk * hd, kv_stride, true, ds.data(), T, 0.0f}, pool);
    if (a.softcap > 0.0f) {  // the scores before the cap, for its derivative
      sgemm({T, T, hd, q + h * hd, q_stride, false, k + hk * hd, kv_stride, true, raw.data(), T, 0.0f}, pool);
    }
    // dS = P (dP - sum_j P dP) through the cap's 1 - tanh^2, times the scale
    pool.parallel_for(T, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* pi = p + i * T;
        float* di = ds.data() + i * T;
        double pdp = 0.0;
        for (int64_t j = 0; j < T; ++j) pdp += static_cast<double>(pi[j]) * di[j];
        for (int64_t j = 0; j < T; ++j) {
          float d = pi[j] * (di[j] - static_cast<float>(pdp));
          if (a.softcap > 0.0f && pi[j] != 0.0f) {
            const float th = std::tanh(a.scale * raw[static_cast<size_t>(i * T + j)] / a.softcap);
            d *= 1.0f - th * th;
          }
          di[j] = d * a.scale;
        }
      }
    });
    // dQ += dS K; dK += dS^T Q
    sgemm({T, hd, T, ds.data(), T, false, k + hk * hd, kv_stride, false, dq + h * hd, q_stride, 1.0f}, pool);
    sgemm({T, hd, T, ds.data(), T, true, q + h * hd, q_stride, false, dk + hk * hd, kv_stride, 1.0f}, pool);
  }
}

double cross_entropy(const float* logits, const int32_t* targets, int64_t T, int64_t n_vocab, float* dlogits,
                     int64_t* n_scored) {
  int64_t n = 0;
  for (int64_t t = 0; t < T; ++t) n += targets[t] >= 0 ? 1 : 0;
  *n_scored = n;
  double loss = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const float* l = logits + t * n_vocab;
    float* dl = dlogits != nullptr ? dlogits + t * n_vocab : nullptr;
    if (targets[t] < 0) {
      if (dl != nullptr) std::fill(dl, dl + n_vocab, 0.0f);
      continue;
    }
    const float mx = *std::max_element(l, l + n_vocab);
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(l[i]) - mx);
    const double lse = mx + std::log(sum);
    loss += lse - l[targets[t]];
    if (dl != nullptr) {
      for (int64_t i = 0; i < n_vocab; ++i) dl[i] = static_cast<float>(std::exp(l[i] - lse) / static_cast<double>(n));
      dl[targets[t]] -= 1.0f / static_cast<float>(n);
    }
  }
  return n > 0 ? loss / static_cast<double>(n) : 0.0;
}

}  // namespace flashlm::train
