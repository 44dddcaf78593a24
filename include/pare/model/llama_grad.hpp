// Training-mode forward and exact backward pass of the reference LLaMA model: gradients of any loss of the logits (cross-entropy, distillation) for every weight.
#pragma once

// llama_params<T> holds every weight of a llama_model densely in T (float or double),
// named as in GGUF. The training forward runs a whole sequence from an empty cache
// (positions 0..n-1) and keeps what the backward needs (the tape):
//
//   llama_pass<T> pass;
//   pass.forward(p, tokens);              // logits() : [n × vocab], row t predicts token t+1
//   ... dlogits = ∂L/∂logits of any loss L of the logits ...
//   pass.backward(dlogits, grad);         // grad = ∂L/∂w for every weight of p
//
// logits_loss_and_grad(p, tokens, loss, grad) does both around a callback
// loss(logits, dlogits) -> L, and loss_and_grad(p, tokens, grad) is its client for
//     L = (1 / (n - 1)) · Σ_{t < n-1} −log softmax(logits_t)[tokens[t+1]].
// Gradients go into a llama_params of p's shapes (a tied classifier's gradient is added
// to the embedding's). The forward arithmetic is the one of llama_session (RMSNorm, RoPE
// on adjacent pairs, grouped-query causal attention, SwiGLU), evaluated in T; T = double
// is what the finite-difference tests use, T = float what training and Taylor scores on
// real text use. Linear layers are taken densely (dense_weights()), so gradients of a
// compressed model are those of its dequantized weights.
//
// Threads: matrix products are split over output rows (or output columns of a weight
// gradient) and attention over heads (backward: over KV heads, each group's heads in
// order) on pare's executor (parallel_for). Every output element is computed by exactly
// one task with a summation order that does not depend on the split, so losses and
// gradients are bit-identical for any thread count.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/parallel.hpp"
#include "pare/core/tensor_view.hpp"
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

/// Σ a[k]·b[k] over k < n with eight partial sums in a fixed order (vectorizable; the
/// same bits whatever thread computes it).
template <class T>
inline T dot_fixed(const T* a, const T* b, std::size_t n) noexcept {
  T acc[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  const std::size_t n8 = n - n % 8;
  for (std::size_t k = 0; k < n8; k += 8)
    for (std::size_t l = 0; l < 8; ++l) acc[l] += a[k + l] * b[k + l];
  T tail = T(0);
  for (std::size_t k = n8; k < n; ++k) tail += a[k] * b[k];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

/// Rows per task so that a task does about 64k multiply-adds.
inline std::size_t grain_for(std::size_t work_per_row) noexcept {
  return std::max<std::size_t>(1, 65536 / std::max<std::size_t>(1, work_per_row));
}

/// Calls f(lo, hi) over chunks of [0, n) of about `grain` indices (at most 4 per thread),
/// which the executor's tasks claim one at a time: a thread that the system deschedules
/// holds up one small chunk, not half the work. Which thread computes a chunk does not
/// change its result.
template <class F>
void for_chunks(std::size_t n, std::size_t grain, F&& f) {
  const std::size_t threads = inside_parallel_task ? 1 : num_threads();
  grain = std::max<std::size_t>(1, grain);
  if (threads <= 1 || n <= grain) {
    if (n) f(std::size_t(0), n);
    return;
  }
  const std::size_t chunks = std::min((n + grain - 1) / grain, 4 * threads), per = (n + chunks - 1) / chunks;
  std::atomic<std::size_t> next{0};
  parallel_for(0, std::min(threads, chunks), 1, [&](std::size_t, std::size_t) {
    for (std::size_t c = next.fetch_add(1); c * per < n; c = next.fetch_add(1)) f(c * per, std::min(n, (c + 1) * per));
  });
}

/// y[n×o] (+)= x[n×i] · w[o×i]ᵀ; split over rows of y.
template <class T>
void mm_xwt(const T* x, const T* w, T* y, std::size_t n, std::size_t i, std::size_t o, bool add = false) {
  for_chunks(n, grain_for(i * o), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t r = lo; r < hi; ++r)
      for (std::size_t c = 0; c < o; ++c) {
        const T s = dot_fixed(x + r * i, w + c * i, i);
        y[r * o + c] = add ? y[r * o + c] + s : s;
      }
  });
}
/// dx[n×i] (+)= dy[n×o] · w[o×i]; split over rows of dx.
template <class T>
void mm_dyw(const T* dy, const T* w, T* dx, std::size_t n, std::size_t i, std::size_t o, bool add) {
  for_chunks(n, grain_for(i * o), [&](std::size_t lo, std::size_t hi) {
    std::vector<T> acc(i);
    for (std::size_t r = lo; r < hi; ++r) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (std::size_t c = 0; c < o; ++c) {
        const T g = dy[r * o + c];
        if (g == T(0)) continue;
        const T* wc = w + c * i;
        for (std::size_t k = 0; k < i; ++k) acc[k] += g * wc[k];
      }
      for (std::size_t k = 0; k < i; ++k) dx[r * i + k] = add ? dx[r * i + k] + acc[k] : acc[k];
    }
  });
}
/// dw[o×i] += dy[n×o]ᵀ · x[n×i]; split over rows of dw (each summed over r in order).
template <class T>
void mm_dw(const T* dy, const T* x, T* dw, std::size_t n, std::size_t i, std::size_t o) {
  for_chunks(o, grain_for(i * n), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t c = lo; c < hi; ++c) {
      T* dwc = dw + c * i;
      for (std::size_t r = 0; r < n; ++r) {
        const T g = dy[r * o + c];
        if (g == T(0)) continue;
        const T* xr = x + r * i;
        for (std::size_t k = 0; k < i; ++k) dwc[k] += g * xr[k];
      }
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

template <class T>
void check_training_tokens(const char* fn, const llama_config& c, const std::vector<std::int32_t>& tokens) {
  const std::size_t n = tokens.size();
  if (n < 2 || n > static_cast<std::size_t>(c.seq_len))
    fail<argument_error>(fn, ": argument 'tokens': expected 2 to ", c.seq_len, " tokens, got ", n);
  for (std::size_t t = 0; t < n; ++t)
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size)
      fail<argument_error>(fn, ": argument 'tokens': token ", t, ": expected an id in [0, ", c.vocab_size, "), got ", tokens[t]);
}

}  // namespace detail

/// One training forward pass and its tape (see the header comment). A pass refers to
/// the parameters it ran on: they must stay alive and unchanged until backward().
/// A pass object can be reused for the next sequence (its buffers are kept).
template <class T>
class llama_pass {
 public:
  /// Runs p on `tokens` (2 to seq_len ids in [0, vocab)), keeping the tape. argument_error
  /// on bad tokens (the pass is then left empty).
  void forward(const llama_params<T>& p, const std::vector<std::int32_t>& tokens) {
    using namespace detail;
    p_ = nullptr;
    check_training_tokens<T>("llama_pass::forward", p.config, tokens);
    tokens_ = tokens;
    const llama_config& c = p.config;
    const std::size_t n = tokens.size(), dim = c.dim, hs = c.head_size(), vocab = c.vocab_size;
    const T eps = T(c.norm_eps);
    hs_ = hs;
    // RoPE table in T (the session uses float; here the angles follow the same formula).
    rc_.resize(n * hs / 2);
    rs_.resize(n * hs / 2);
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t i = 0; i < hs / 2; ++i) {
        const T freq = T(1) / std::pow(T(c.rope_theta), T(2 * i) / T(hs));
        rc_[t * hs / 2 + i] = std::cos(T(t) * freq);
        rs_[t * hs / 2 + i] = std::sin(T(t) * freq);
      }
    tape_.resize(p.blocks.size());
    std::vector<T> x(n * dim);
    for (std::size_t t = 0; t < n; ++t)
      std::copy(p.embd.begin() + tokens[t] * dim, p.embd.begin() + (tokens[t] + 1) * dim, x.begin() + t * dim);
    for (std::size_t l = 0; l < p.blocks.size(); ++l) {
      const auto& b = p.blocks[l];
      layer_tape& a = tape_[l];
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
      rope(a.q.data(), n, qd, false);
      rope(a.k.data(), n, kv, false);
      const std::size_t tri = n * (n + 1) / 2;  // attention probabilities [head][t][u <= t], rows packed
      a.prob.resize(static_cast<std::size_t>(b.n_heads) * tri);
      a.o.assign(n * qd, T(0));
      const T scale = T(1) / std::sqrt(T(hs));
      parallel_for(0, static_cast<std::size_t>(b.n_heads), 1, [&](std::size_t h0, std::size_t h1) {
        std::vector<T> qh(hs);
        for (std::size_t h = h0; h < h1; ++h) {
          const std::size_t kh = h / group;
          for (std::size_t t = 0; t < n; ++t) {
            T* pr = a.prob.data() + h * tri + t * (t + 1) / 2;
            const T* qt = a.q.data() + t * qd + h * hs;
            T mx = -INFINITY;
            for (std::size_t u = 0; u <= t; ++u) {
              const T* ku = a.k.data() + u * kv + kh * hs;
              T d = 0;
              for (std::size_t i = 0; i < hs; ++i) d += qt[i] * ku[i];
              pr[u] = d * scale;
              mx = std::max(mx, pr[u]);
            }
            T z = 0;
            for (std::size_t u = 0; u <= t; ++u) z += (pr[u] = std::exp(pr[u] - mx));
            T* ot = a.o.data() + t * qd + h * hs;
            for (std::size_t u = 0; u <= t; ++u) {
              pr[u] /= z;
              const T* vu = a.v.data() + u * kv + kh * hs;
              for (std::size_t i = 0; i < hs; ++i) ot[i] += pr[u] * vu[i];
            }
          }
        }
      });
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
      for_chunks(n * hid, 4096, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) a.h[i] = a.g[i] / (T(1) + std::exp(-a.g[i])) * a.u[i];
      });
      x = a.x1;
      mm_xwt(a.h.data(), b.w2.data(), x.data(), n, hid, dim, true);
    }
    x_last_ = std::move(x);
    xf_.resize(n * dim);
    sf_.resize(n);
    logits_.resize(n * vocab);
    rms_fwd(x_last_.data(), p.out_norm.data(), xf_.data(), sf_.data(), n, dim, eps);
    const std::vector<T>& wout = p.tied ? p.embd : p.out;
    mm_xwt(xf_.data(), wout.data(), logits_.data(), n, dim, vocab);
    p_ = &p;
  }

  /// Whether forward() has run (successfully) since construction.
  bool ready() const noexcept { return p_ != nullptr; }
  /// The tokens of the last forward().
  const std::vector<std::int32_t>& tokens() const noexcept { return tokens_; }
  /// Logits [n × vocab] of the last forward() (row t: the prediction of token t+1).
  matrix_view<const T> logits() const noexcept {
    return matrix_view<const T>(logits_.data(), tokens_.size(), p_ ? static_cast<std::size_t>(p_->config.vocab_size) : 0);
  }

  /// Back-propagates ∂L/∂logits (`dlogits`, [n × vocab], any strides) through the last
  /// forward into `grad`: with `accumulate` the gradient is added to grad (which must have
  /// the parameters' shapes, e.g. from zeros_like(); otherwise it is reset to zeros first),
  /// without it grad is overwritten. argument_error before any forward(), shape_error if
  /// dlogits is not [n × vocab]; grad is untouched on error.
  void backward(const matrix_view<const T>& dlogits, llama_params<T>& grad, bool accumulate = false) const {
    using namespace detail;
    if (!p_) fail<argument_error>("llama_pass::backward: expected a forward() before backward(), got none");
    const llama_params<T>& p = *p_;
    const llama_config& c = p.config;
    const std::size_t n = tokens_.size(), dim = c.dim, hs = c.head_size(), vocab = c.vocab_size;
    check_same_shape("llama_pass::backward: argument 'dlogits'", shape_t{n, vocab}, dlogits.shape());
    const T* dl = dlogits.data();
    std::vector<T> dl_copy;
    if (!dlogits.has_contiguous_rows() || (n > 1 && dlogits.row_stride() != static_cast<std::ptrdiff_t>(vocab))) {
      dl_copy.resize(n * vocab);
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t v = 0; v < vocab; ++v) dl_copy[r * vocab + v] = dlogits(r, v);
      dl = dl_copy.data();
    }
    llama_params<T>& gr = grad;
    if (!same_shapes(gr, p)) gr = p.zeros_like();
    else if (!accumulate)
      for (auto& [name, v] : gr.named()) std::fill(v->begin(), v->end(), T(0));
    std::vector<T>& dwout = p.tied ? gr.embd : gr.out;
    const std::vector<T>& wout = p.tied ? p.embd : p.out;
    mm_dw(dl, xf_.data(), dwout.data(), n, dim, vocab);
    std::vector<T> dxf(n * dim), dx(n * dim, T(0));
    mm_dyw(dl, wout.data(), dxf.data(), n, dim, vocab, false);
    rms_bwd(x_last_.data(), p.out_norm.data(), sf_.data(), dxf.data(), dx.data(), gr.out_norm.data(), n, dim);
    for (std::size_t l = p.blocks.size(); l-- > 0;) {
      const auto& b = p.blocks[l];
      auto& gb = gr.blocks[l];
      const layer_tape& a = tape_[l];
      const std::size_t qd = b.n_heads * hs, kv = b.n_kv_heads * hs, hid = b.hidden;
      const std::size_t group = static_cast<std::size_t>(b.n_heads / b.n_kv_heads);
      // FFN: x2 = x1 + h·W2ᵀ
      std::vector<T> dh(n * hid);
      mm_dw(dx.data(), a.h.data(), gb.w2.data(), n, hid, dim);
      mm_dyw(dx.data(), b.w2.data(), dh.data(), n, hid, dim, false);
      std::vector<T> dg(n * hid), du(n * hid);
      for_chunks(n * hid, 4096, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) {
          const T sg = T(1) / (T(1) + std::exp(-a.g[i]));
          du[i] = dh[i] * a.g[i] * sg;
          dg[i] = dh[i] * a.u[i] * sg * (T(1) + a.g[i] * (T(1) - sg));
        }
      });
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
      std::vector<T> dq(n * qd, T(0)), dk(n * kv, T(0)), dv(n * kv, T(0));
      const T scale = T(1) / std::sqrt(T(hs));
      const std::size_t tri = n * (n + 1) / 2;
      // One task per KV head: it owns dk, dv of that head and dq of the heads of its group
      // (visited in order, so each sum has the serial order).
      parallel_for(0, static_cast<std::size_t>(b.n_kv_heads), 1, [&](std::size_t k0, std::size_t k1) {
        std::vector<T> dp(n);
        for (std::size_t kh = k0; kh < k1; ++kh)
          for (std::size_t h = kh * group; h < (kh + 1) * group; ++h)
            for (std::size_t t = 0; t < n; ++t) {
              const T* pr = a.prob.data() + h * tri + t * (t + 1) / 2;
              const T* d_o = dout.data() + t * qd + h * hs;
              T sum = 0;
              for (std::size_t u = 0; u <= t; ++u) {
                const T* vu = a.v.data() + u * kv + kh * hs;
                T* dvu = dv.data() + u * kv + kh * hs;
                T d = 0;
                for (std::size_t i = 0; i < hs; ++i) {
                  d += d_o[i] * vu[i];
                  dvu[i] += pr[u] * d_o[i];
                }
                dp[u] = d;
                sum += pr[u] * d;
              }
              T* dqt = dq.data() + t * qd + h * hs;
              const T* qt = a.q.data() + t * qd + h * hs;
              for (std::size_t u = 0; u <= t; ++u) {
                const T da = pr[u] * (dp[u] - sum) * scale;
                const T* ku = a.k.data() + u * kv + kh * hs;
                T* dku = dk.data() + u * kv + kh * hs;
                for (std::size_t i = 0; i < hs; ++i) {
                  dqt[i] += da * ku[i];
                  dku[i] += da * qt[i];
                }
              }
            }
      });
      rope(dq.data(), n, qd, true);  // the rotation's transpose is the inverse rotation
      rope(dk.data(), n, kv, true);
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
      for (std::size_t i = 0; i < dim; ++i) gr.embd[tokens_[t] * dim + i] += dx[t * dim + i];
  }

  /// Whether g has p's tensor names and sizes (a valid accumulation target).
  static bool same_shapes(const llama_params<T>& g, const llama_params<T>& p) {
    if (g.tied != p.tied || g.blocks.size() != p.blocks.size()) return false;
    auto gn = const_cast<llama_params<T>&>(g).named();
    auto pn = const_cast<llama_params<T>&>(p).named();
    if (gn.size() != pn.size()) return false;
    for (std::size_t i = 0; i < gn.size(); ++i)
      if (gn[i].first != pn[i].first || gn[i].second->size() != pn[i].second->size()) return false;
    return true;
  }

 private:
  struct layer_tape {
    std::vector<T> x, xb, s1, q, k, v, prob, o, x1, xb2, s2, g, u, h;
  };

  void rope(T* v, std::size_t n, std::size_t width, bool inverse) const {
    const std::size_t hs = hs_;
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t i = 0; i < width; i += 2) {
        const std::size_t j = (i % hs) / 2;
        const T cs = rc_[t * hs / 2 + j], sn = inverse ? -rs_[t * hs / 2 + j] : rs_[t * hs / 2 + j];
        const T a = v[t * width + i], b = v[t * width + i + 1];
        v[t * width + i] = a * cs - b * sn;
        v[t * width + i + 1] = a * sn + b * cs;
      }
  }
  const llama_params<T>* p_ = nullptr;
  std::vector<std::int32_t> tokens_;
  std::size_t hs_ = 0;
  std::vector<layer_tape> tape_;
  std::vector<T> rc_, rs_, x_last_, xf_, sf_, logits_;
};

/// Forward, a loss of the logits, backward: calls loss(logits, dlogits) with the logits
/// [n × vocab] and a zeroed dlogits [n × vocab] in which it writes ∂L/∂logits, and
/// returns the L it returns. If grad is non-null, ∂L/∂w goes into *grad (added with
/// `accumulate`, see llama_pass::backward). `pass` (optional) keeps the buffers between
/// calls. Requirements on `loss`: callable as T(matrix_view<const T>, matrix_view<T>).
template <class T, class Loss>
T logits_loss_and_grad(const llama_params<T>& p, const std::vector<std::int32_t>& tokens, Loss&& loss,
                       typename detail::same_type<llama_params<T>>::type* grad, bool accumulate = false,
                       llama_pass<T>* pass = nullptr) {
  llama_pass<T> local;
  llama_pass<T>& ps = pass ? *pass : local;
  ps.forward(p, tokens);
  const matrix_view<const T> lg = ps.logits();
  std::vector<T> dlogits(lg.rows() * lg.cols(), T(0));
  const T l = loss(lg, matrix_view<T>(dlogits.data(), lg.rows(), lg.cols()));
  if (grad) ps.backward(matrix_view<const T>(dlogits.data(), lg.rows(), lg.cols()), *grad, accumulate);
  return l;
}

/// Mean next-token cross-entropy of logits [n × vocab] against tokens[1..n-1] and its
/// gradient into dlogits (rows 0..n-2; the last row gets 0). Rows are split over threads;
/// the loss is summed in row order.
template <class T>
T next_token_ce(const matrix_view<const T>& logits, const std::vector<std::int32_t>& tokens, const matrix_view<T>& dlogits) {
  const std::size_t n = tokens.size(), vocab = logits.cols();
  if (logits.rows() != n || n < 2)
    detail::fail<shape_error>("next_token_ce: argument 'logits': expected one row per token (", n, " >= 2), got ",
                              logits.shape());
  if (dlogits.data()) check_same_shape("next_token_ce: argument 'dlogits'", logits.shape(), dlogits.shape());
  for (std::size_t t = 1; t < n; ++t)
    if (tokens[t] < 0 || static_cast<std::size_t>(tokens[t]) >= vocab)
      detail::fail<argument_error>("next_token_ce: argument 'tokens': token ", t, ": expected an id in [0, ", vocab, "), got ",
                                   tokens[t]);
  const T inv_count = T(1) / T(n - 1);
  std::vector<T> row_loss(n - 1);
  parallel_for(0, n - 1, detail::grain_for(4 * vocab), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t t = lo; t < hi; ++t) {
      T mx = logits(t, 0);
      for (std::size_t i = 1; i < vocab; ++i) mx = std::max(mx, logits(t, i));
      T z = 0;
      for (std::size_t i = 0; i < vocab; ++i) z += std::exp(logits(t, i) - mx);
      row_loss[t] = (std::log(z) - (logits(t, tokens[t + 1]) - mx)) * inv_count;
      if (dlogits.data()) {
        for (std::size_t i = 0; i < vocab; ++i) dlogits(t, i) = std::exp(logits(t, i) - mx) / z * inv_count;
        dlogits(t, tokens[t + 1]) -= inv_count;
      }
    }
  });
  if (dlogits.data())
    for (std::size_t i = 0; i < vocab; ++i) dlogits(n - 1, i) = T(0);
  T loss = 0;
  for (T r : row_loss) loss += r;
  return loss;
}

/// Mean next-token cross-entropy of one sequence (see the header comment); with grad
/// non-null also its gradient (added to *grad with `accumulate`, which must then have
/// p's shapes, e.g. from zeros_like(); otherwise *grad is overwritten).
template <class T>
T loss_and_grad(const llama_params<T>& p, const std::vector<std::int32_t>& tokens,
                typename detail::same_type<llama_params<T>>::type* grad, bool accumulate = false) {
  detail::check_training_tokens<T>("loss_and_grad", p.config, tokens);
  return logits_loss_and_grad(
      p, tokens, [&](const matrix_view<const T>& lg, const matrix_view<T>& dl) { return next_token_ce(lg, tokens, dl); },
      grad, accumulate);
}

PARE_NAMESPACE_END
