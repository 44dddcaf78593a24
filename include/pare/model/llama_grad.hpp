// Training-mode forward and exact backward pass of the reference LLaMA model: mean next-token cross-entropy and its gradient for every weight.
#pragma once

// llama_params<T> holds every weight of a llama_model densely in T (float or double),
// named as in GGUF. loss_and_grad(p, tokens, grad) runs the whole sequence from an empty
// cache (positions 0..n-1), returns
//     L = (1 / (n - 1)) · Σ_{t < n-1} −log softmax(logits_t)[tokens[t+1]]
// and, if grad is non-null, writes ∂L/∂w for every weight into it (same layout; a tied
// classifier's gradient is added to the embedding's). The forward arithmetic is the
// one of llama_session (RMSNorm, RoPE on adjacent pairs, grouped-query causal attention,
// SwiGLU), evaluated in T; T = double is what the finite-difference tests use, T = float
// what Taylor scores on real text use. Linear layers are taken densely (dense_weights()),
// so gradients of a compressed model are those of its dequantized weights.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/model/llama_model.hpp"

PARE_NAMESPACE_BEGIN

template <class T>
struct llama_params {
  struct block {
    int n_heads = 0, n_kv_heads = 0;
    std::size_t hidden = 0;
    std::vector<T> attn_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3;
  };
  llama_config config;
  bool tied = true;
  std::vector<T> embd;  // [vocab, dim]
  std::vector<block> blocks;
  std::vector<T> out_norm;
  std::vector<T> out;  // [vocab, dim]; empty when tied

  static llama_params from_model(const llama_model& m) {
    for (std::size_t l = 0; l < m.blocks.size(); ++l)
      if (m.blocks[l].has_shortcuts())
        detail::fail<unsupported_error>("llama_params::from_model: block ", l,
                                        " has residual linears (SliceGPT per-block rotation); the backward pass "
                                        "supports identity residuals only");
    llama_params p;
    p.config = m.config;
    p.tied = m.tied_classifier;
    p.embd.assign(m.token_embd.data(), m.token_embd.data() + m.token_embd.size());
    auto dense = [](const linear_layer& l) {
      std::vector<float> w(l.out_features() * l.in_features());
      l.dense_weights(matrix_view<float>(w.data(), l.out_features(), l.in_features()));
      return std::vector<T>(w.begin(), w.end());
    };
    for (const llama_block& b : m.blocks) {
      block q;
      q.n_heads = b.n_heads;
      q.n_kv_heads = b.n_kv_heads;
      q.hidden = b.w1->out_features();
      q.attn_norm.assign(b.attn_norm.begin(), b.attn_norm.end());
      q.ffn_norm.assign(b.ffn_norm.begin(), b.ffn_norm.end());
      q.wq = dense(*b.wq);
      q.wk = dense(*b.wk);
      q.wv = dense(*b.wv);
      q.wo = dense(*b.wo);
      q.w1 = dense(*b.w1);
      q.w2 = dense(*b.w2);
      q.w3 = dense(*b.w3);
      p.blocks.push_back(std::move(q));
    }
    p.out_norm.assign(m.output_norm.begin(), m.output_norm.end());
    if (!p.tied) p.out = dense(*m.output);
    return p;
  }

  /// The same shapes, all zero.
  llama_params zeros_like() const {
    llama_params z = *this;
    for (auto& [name, v] : z.named()) std::fill(v->begin(), v->end(), T(0));
    return z;
  }

  /// (GGUF name, storage) of every tensor.
  std::vector<std::pair<std::string, std::vector<T>*>> named() {
    std::vector<std::pair<std::string, std::vector<T>*>> n{{"token_embd.weight", &embd}};
    for (std::size_t l = 0; l < blocks.size(); ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      block& b = blocks[l];
      n.insert(n.end(), {{p + "attn_norm.weight", &b.attn_norm}, {p + "attn_q.weight", &b.wq},
                         {p + "attn_k.weight", &b.wk}, {p + "attn_v.weight", &b.wv},
                         {p + "attn_output.weight", &b.wo}, {p + "ffn_norm.weight", &b.ffn_norm},
                         {p + "ffn_gate.weight", &b.w1}, {p + "ffn_down.weight", &b.w2},
                         {p + "ffn_up.weight", &b.w3}});
    }
    n.push_back({"output_norm.weight", &out_norm});
    if (!tied) n.push_back({"output.weight", &out});
    return n;
  }
  std::vector<T>& at(const std::string& name) {
    for (auto& [k, v] : named())
      if (k == name) return *v;
    detail::fail<argument_error>("llama_params::at: argument 'name': expected a tensor name, got '", name, "'");
  }
};

namespace detail {

template <class U>
struct same_type {  // keeps a parameter out of template argument deduction
  using type = U;
};

/// y[n×o] (+)= x[n×i] · w[o×i]ᵀ
template <class T>
void mm_xwt(const T* x, const T* w, T* y, std::size_t n, std::size_t i, std::size_t o, bool add = false) {
  parallel_for(0, n, std::max<std::size_t>(1, 65536 / std::max<std::size_t>(1, i * o)), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t r = lo; r < hi; ++r)
      for (std::size_t c = 0; c < o; ++c) {
        T s = 0;
        for (std::size_t k = 0; k < i; ++k) s += x[r * i + k] * w[c * i + k];
        y[r * o + c] = add ? y[r * o + c] + s : s;
      }
  });
}
/// dx[n×i] (+)= dy[n×o] · w[o×i]
template <class T>
void mm_dyw(const T* dy, const T* w, T* dx, std::size_t n, std::size_t i, std::size_t o, bool add) {
  parallel_for(0, n, std::max<std::size_t>(1, 65536 / std::max<std::size_t>(1, i * o)), [&](std::size_t lo, std::size_t hi) {
    std::vector<T> acc(i);
    for (std::size_t r = lo; r < hi; ++r) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (std::size_t c = 0; c < o; ++c) {
        const T g = dy[r * o + c];
        if (g == T(0)) continue;
        for (std::size_t k = 0; k < i; ++k) acc[k] += g * w[c * i + k];
      }
      for (std::size_t k = 0; k < i; ++k) dx[r * i + k] = add ? dx[r * i + k] + acc[k] : acc[k];
    }
  });
}
/// dw[o×i] += dy[n×o]ᵀ · x[n×i]
template <class T>
void mm_dw(const T* dy, const T* x, T* dw, std::size_t n, std::size_t i, std::size_t o) {
  parallel_for(0, o, std::max<std::size_t>(1, 65536 / std::max<std::size_t>(1, i * n)), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t c = lo; c < hi; ++c)
      for (std::size_t r = 0; r < n; ++r) {
        const T g = dy[r * o + c];
        if (g == T(0)) continue;
        for (std::size_t k = 0; k < i; ++k) dw[c * i + k] += g * x[r * i + k];
      }
  });
}

/// RMSNorm forward of n rows: y = g ⊙ x · s, s = 1 / sqrt(mean(x²) + eps); returns s per row.
template <class T>
void rms_fwd(const T* x, const T* g, T* y, T* s, std::size_t n, std::size_t d, T eps) {
  for (std::size_t r = 0; r < n; ++r) {
    T ss = 0;
    for (std::size_t i = 0; i < d; ++i) ss += x[r * d + i] * x[r * d + i];
    s[r] = T(1) / std::sqrt(ss / T(d) + eps);
    for (std::size_t i = 0; i < d; ++i) y[r * d + i] = g[i] * (s[r] * x[r * d + i]);
  }
}
/// RMSNorm backward: dx += ∂/∂x, dg += ∂/∂g, given dy.
template <class T>
void rms_bwd(const T* x, const T* g, const T* s, const T* dy, T* dx, T* dg, std::size_t n, std::size_t d) {
  for (std::size_t r = 0; r < n; ++r) {
    T dot = 0;
    for (std::size_t i = 0; i < d; ++i) {
      dot += dy[r * d + i] * g[i] * x[r * d + i];
      if (dg) dg[i] += dy[r * d + i] * x[r * d + i] * s[r];
    }
    const T c = s[r] * s[r] * s[r] / T(d) * dot;
    for (std::size_t i = 0; i < d; ++i) dx[r * d + i] += s[r] * dy[r * d + i] * g[i] - c * x[r * d + i];
  }
}

}  // namespace detail

/// See the header comment. With `accumulate`, gradients are added to *grad (which must
/// have p's shapes, e.g. from zeros_like()); otherwise *grad is overwritten.
template <class T>
T loss_and_grad(const llama_params<T>& p, const std::vector<std::int32_t>& tokens,
                typename detail::same_type<llama_params<T>>::type* grad, bool accumulate = false) {
  using namespace detail;
  const llama_config& c = p.config;
  const std::size_t n = tokens.size(), dim = c.dim, hs = c.head_size(), vocab = c.vocab_size;
  const T eps = T(c.norm_eps);
  if (n < 2 || n > static_cast<std::size_t>(c.seq_len))
    fail<argument_error>("loss_and_grad: argument 'tokens': expected 2 to ", c.seq_len, " tokens, got ", n);
  for (std::size_t t = 0; t < n; ++t)
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size)
      fail<argument_error>("loss_and_grad: token ", t, ": expected an id in [0, ", c.vocab_size, "), got ", tokens[t]);
  // RoPE table in T (the session uses float; here the angles follow the same formula).
  std::vector<T> rc(n * hs / 2), rs(n * hs / 2);
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t i = 0; i < hs / 2; ++i) {
      const T freq = T(1) / std::pow(T(c.rope_theta), T(2 * i) / T(hs));
      rc[t * hs / 2 + i] = std::cos(T(t) * freq);
      rs[t * hs / 2 + i] = std::sin(T(t) * freq);
    }
  auto rope = [&](T* v, std::size_t width, bool inverse) {
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t i = 0; i < width; i += 2) {
        const std::size_t j = (i % hs) / 2;
        const T cs = rc[t * hs / 2 + j], sn = inverse ? -rs[t * hs / 2 + j] : rs[t * hs / 2 + j];
        const T a = v[t * width + i], b = v[t * width + i + 1];
        v[t * width + i] = a * cs - b * sn;
        v[t * width + i + 1] = a * sn + b * cs;
      }
  };
  struct tape {
    std::vector<T> x, xb, s1, q, k, v, prob, o, x1, xb2, s2, g, u, h;
  };
  std::vector<tape> tp(p.blocks.size());
  std::vector<T> x(n * dim);
  for (std::size_t t = 0; t < n; ++t)
    std::copy(p.embd.begin() + tokens[t] * dim, p.embd.begin() + (tokens[t] + 1) * dim, x.begin() + t * dim);
  for (std::size_t l = 0; l < p.blocks.size(); ++l) {
    const auto& b = p.blocks[l];
    tape& a = tp[l];
    const std::size_t qd = b.n_heads * hs, kv = b.n_kv_heads * hs, hid = b.hidden;
    const std::size_t group = static_cast<std::size_t>(b.n_heads / b.n_kv_heads);
    a.x = x;
    a.xb.resize(n * dim);
    a.s1.resize(n);
    rms_fwd(x.data(), b.attn_norm.data(), a.xb.data(), a.s1.data(), n, dim, eps);
    a.q.resize(n * qd);
    a.k.resize(n * kv);
    a.v.resize(n * kv);
    mm_xwt(a.xb.data(), b.wq.data(), a.q.data(), n, dim, qd);
    mm_xwt(a.xb.data(), b.wk.data(), a.k.data(), n, dim, kv);
    mm_xwt(a.xb.data(), b.wv.data(), a.v.data(), n, dim, kv);
    rope(a.q.data(), qd, false);
    rope(a.k.data(), kv, false);
    a.prob.assign(static_cast<std::size_t>(b.n_heads) * n * n, T(0));  // [head][t][u]
    a.o.assign(n * qd, T(0));
    const T scale = T(1) / std::sqrt(T(hs));
    for (std::size_t h = 0; h < static_cast<std::size_t>(b.n_heads); ++h) {
      const std::size_t kh = h / group;
      for (std::size_t t = 0; t < n; ++t) {
        T* pr = a.prob.data() + (h * n + t) * n;
        T mx = -INFINITY;
        for (std::size_t u = 0; u <= t; ++u) {
          T d = 0;
          for (std::size_t i = 0; i < hs; ++i) d += a.q[t * qd + h * hs + i] * a.k[u * kv + kh * hs + i];
          pr[u] = d * scale;
          mx = std::max(mx, pr[u]);
        }
        T z = 0;
        for (std::size_t u = 0; u <= t; ++u) z += (pr[u] = std::exp(pr[u] - mx));
        for (std::size_t u = 0; u <= t; ++u) {
          pr[u] /= z;
          for (std::size_t i = 0; i < hs; ++i) a.o[t * qd + h * hs + i] += pr[u] * a.v[u * kv + kh * hs + i];
        }
      }
    }
    a.x1 = x;
    mm_xwt(a.o.data(), b.wo.data(), a.x1.data(), n, qd, dim, true);
    a.xb2.resize(n * dim);
    a.s2.resize(n);
    rms_fwd(a.x1.data(), b.ffn_norm.data(), a.xb2.data(), a.s2.data(), n, dim, eps);
    a.g.resize(n * hid);
    a.u.resize(n * hid);
    a.h.resize(n * hid);
    mm_xwt(a.xb2.data(), b.w1.data(), a.g.data(), n, dim, hid);
    mm_xwt(a.xb2.data(), b.w3.data(), a.u.data(), n, dim, hid);
    for (std::size_t i = 0; i < n * hid; ++i) a.h[i] = a.g[i] / (T(1) + std::exp(-a.g[i])) * a.u[i];
    x = a.x1;
    mm_xwt(a.h.data(), b.w2.data(), x.data(), n, hid, dim, true);
  }
  std::vector<T> xf(n * dim), sf(n), logits(n * vocab);
  rms_fwd(x.data(), p.out_norm.data(), xf.data(), sf.data(), n, dim, eps);
  const std::vector<T>& wout = p.tied ? p.embd : p.out;
  mm_xwt(xf.data(), wout.data(), logits.data(), n, dim, vocab);
  T loss = 0;
  const T inv_count = T(1) / T(n - 1);
  std::vector<T> dlogits(n * vocab, T(0));
  for (std::size_t t = 0; t + 1 < n; ++t) {
    const T* lg = logits.data() + t * vocab;
    const T mx = *std::max_element(lg, lg + vocab);
    T z = 0;
    for (std::size_t i = 0; i < vocab; ++i) z += std::exp(lg[i] - mx);
    loss += (std::log(z) - (lg[tokens[t + 1]] - mx)) * inv_count;
    for (std::size_t i = 0; i < vocab; ++i) dlogits[t * vocab + i] = std::exp(lg[i] - mx) / z * inv_count;
    dlogits[t * vocab + tokens[t + 1]] -= inv_count;
  }
  if (!grad) return loss;

  llama_params<T>& gr = *grad;
  if (!accumulate || gr.embd.size() != p.embd.size() || gr.blocks.size() != p.blocks.size()) gr = p.zeros_like();
  std::vector<T>& dwout = p.tied ? gr.embd : gr.out;
  mm_dw(dlogits.data(), xf.data(), dwout.data(), n, dim, vocab);
  std::vector<T> dxf(n * dim), dx(n * dim, T(0));
  mm_dyw(dlogits.data(), wout.data(), dxf.data(), n, dim, vocab, false);
  rms_bwd(x.data(), p.out_norm.data(), sf.data(), dxf.data(), dx.data(), gr.out_norm.data(), n, dim);
  for (std::size_t l = p.blocks.size(); l-- > 0;) {
    const auto& b = p.blocks[l];
    auto& gb = gr.blocks[l];
    const tape& a = tp[l];
    const std::size_t qd = b.n_heads * hs, kv = b.n_kv_heads * hs, hid = b.hidden;
    const std::size_t group = static_cast<std::size_t>(b.n_heads / b.n_kv_heads);
    // FFN: x2 = x1 + h·W2ᵀ
    std::vector<T> dh(n * hid);
    mm_dw(dx.data(), a.h.data(), gb.w2.data(), n, hid, dim);
    mm_dyw(dx.data(), b.w2.data(), dh.data(), n, hid, dim, false);
    std::vector<T> dg(n * hid), du(n * hid);
    for (std::size_t i = 0; i < n * hid; ++i) {
      const T sg = T(1) / (T(1) + std::exp(-a.g[i]));
      du[i] = dh[i] * a.g[i] * sg;
      dg[i] = dh[i] * a.u[i] * sg * (T(1) + a.g[i] * (T(1) - sg));
    }
    mm_dw(dg.data(), a.xb2.data(), gb.w1.data(), n, dim, hid);
    mm_dw(du.data(), a.xb2.data(), gb.w3.data(), n, dim, hid);
    std::vector<T> dxb2(n * dim);
    mm_dyw(dg.data(), b.w1.data(), dxb2.data(), n, dim, hid, false);
    mm_dyw(du.data(), b.w3.data(), dxb2.data(), n, dim, hid, true);
    std::vector<T> dx1 = dx;  // residual
    rms_bwd(a.x1.data(), b.ffn_norm.data(), a.s2.data(), dxb2.data(), dx1.data(), gb.ffn_norm.data(), n, dim);
    // Attention: x1 = x + o·Woᵀ
    std::vector<T> dout(n * qd);
    mm_dw(dx1.data(), a.o.data(), gb.wo.data(), n, qd, dim);
    mm_dyw(dx1.data(), b.wo.data(), dout.data(), n, qd, dim, false);
    std::vector<T> dq(n * qd, T(0)), dk(n * kv, T(0)), dv(n * kv, T(0)), dp(n);
    const T scale = T(1) / std::sqrt(T(hs));
    for (std::size_t h = 0; h < static_cast<std::size_t>(b.n_heads); ++h) {
      const std::size_t kh = h / group;
      for (std::size_t t = 0; t < n; ++t) {
        const T* pr = a.prob.data() + (h * n + t) * n;
        const T* d_o = dout.data() + t * qd + h * hs;
        T sum = 0;
        for (std::size_t u = 0; u <= t; ++u) {
          T d = 0;
          for (std::size_t i = 0; i < hs; ++i) {
            d += d_o[i] * a.v[u * kv + kh * hs + i];
            dv[u * kv + kh * hs + i] += pr[u] * d_o[i];
          }
          dp[u] = d;
          sum += pr[u] * d;
        }
        for (std::size_t u = 0; u <= t; ++u) {
          const T da = pr[u] * (dp[u] - sum) * scale;
          for (std::size_t i = 0; i < hs; ++i) {
            dq[t * qd + h * hs + i] += da * a.k[u * kv + kh * hs + i];
            dk[u * kv + kh * hs + i] += da * a.q[t * qd + h * hs + i];
          }
        }
      }
    }
    rope(dq.data(), qd, true);  // the rotation's transpose is the inverse rotation
    rope(dk.data(), kv, true);
    mm_dw(dq.data(), a.xb.data(), gb.wq.data(), n, dim, qd);
    mm_dw(dk.data(), a.xb.data(), gb.wk.data(), n, dim, kv);
    mm_dw(dv.data(), a.xb.data(), gb.wv.data(), n, dim, kv);
    std::vector<T> dxb(n * dim);
    mm_dyw(dq.data(), b.wq.data(), dxb.data(), n, dim, qd, false);
    mm_dyw(dk.data(), b.wk.data(), dxb.data(), n, dim, kv, true);
    mm_dyw(dv.data(), b.wv.data(), dxb.data(), n, dim, kv, true);
    dx = dx1;
    rms_bwd(a.x.data(), b.attn_norm.data(), a.s1.data(), dxb.data(), dx.data(), gb.attn_norm.data(), n, dim);
  }
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t i = 0; i < dim; ++i) gr.embd[tokens[t] * dim + i] += dx[t * dim + i];
  return loss;
}

PARE_NAMESPACE_END
