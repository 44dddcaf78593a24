// SliceGPT on the reference model: fold the RMSNorm gains into the next linears, rotate the residual stream onto its principal axes, delete the least-variance dimensions.
#pragma once

// Ashkboos et al., "SliceGPT: Compress Large Language Models by Deleting Rows and Columns"
// (ICLR 2024). RMSNorm with unit gain commutes with an orthogonal Q: rmsnorm(x·Q) =
// rmsnorm(x)·Q. So, with the gains α folded into the linears that read the norms
// (W ← W·diag(α), output head untied), rotating every residual signal by Q and every
// weight accordingly leaves the model's function unchanged; keeping only the first d of
// the D principal axes (Q̂ = Q[:, :d]) then deletes D − d columns of every reading linear
// (attn_q/k/v, ffn_gate/up, output, embedding) and D − d rows of every writing linear
// (attn_output, ffn_down). Here, with x the residual signal at point p (entering a norm)
// and Q̂_p its basis (y = x·Wᵀ convention):
//
//   embedding     E ← E·Q̂₀                          [vocab, d]
//   block l       Wq,k,v ← Wq,k,v·diag(α_attn)·Q̂_a   Wo ← Q̂_fᵀ·Wo
//                 W1,3 ← W1,3·diag(α_ffn)·Q̂_f         W2 ← Q̂_oᵀ·W2        (a = 2l, f = 2l+1, o = 2l+2)
//                 residual linears S_attn = Q̂_fᵀ·Q̂_a, S_ffn = Q̂_oᵀ·Q̂_f   [d, d]  (x ← x·Sᵀ + …)
//   head          Wout ← Wout·diag(α_out)·Q̂_{2L}
//   norms         gain √(D/d) on every dimension, eps ← eps·D/d
//
// The last line keeps rmsnorm exact: rmsnorm over d dimensions of x·Q̂ with these constants
// equals rmsnorm over D of x·Q̂ extended by zeros, so with d = D (rotation only) the model
// computes the same function up to float rounding (tested). Q_p are the eigenvectors of
// C_p = Σ xᵀx over calibration text (damped by damping·mean(diag C_p), 0.01 as in the paper),
// largest first (pare/lowrank/pca.hpp).
//
// rotation::per_point (the paper's choice): one Q per point, so blocks carry the [d, d]
// residual linears. rotation::global: one Q from Σ_p C_p for every point; the residual
// linears are then the identity and are left out, so the sliced model is a plain LLaMA of
// width d (attention width unchanged: config.head_dim) that write_model_gguf can write.
//
// Calibration: with rotation::per_point and `sequential` (the default, as the paper does),
// the bases are found in forward order, each from the signals of the model whose earlier
// points are already sliced (detail::sequential_bases: one calibration pass per point);
// otherwise all covariances come from one pass over the unsliced model. The new width is
// D − ⌊fraction·D⌋ rounded down to a multiple of round_to (the paper rounds to 8). Linears must be dense fp32: slice before quantizing
// or factorizing (anything else is an unsupported_error). Everything is computed first; an
// error leaves the model unchanged.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/linalg/lapack.hpp"
#include "pare/lowrank/pca.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/llama_session.hpp"

PARE_NAMESPACE_BEGIN

struct slicegpt_options {
  enum class rotation { per_point, global };
  double fraction = 0.25;  ///< share of the residual width to delete, in [0, 1)
  rotation mode = rotation::per_point;
  double damping = 0.01;       ///< PCA damping, times mean(diag C)
  /// per_point only: find the bases in forward order through the partly sliced model, as
  /// the paper does (one calibration pass per norm input); false: one pass over the
  /// unsliced model for all of them.
  bool sequential = true;
  std::size_t round_to = 1;    ///< new width rounded down to a multiple of this (≥ 1)
};

struct slicegpt_report {
  std::size_t old_dim = 0, new_dim = 0;
  std::vector<double> kept_variance;  ///< per point (2·blocks + 1): share of tr(C_p) on the kept axes
  std::size_t weights_before = 0, weights_after = 0;  ///< llama_model::weight_count()
};

namespace detail {

/// Σ xᵀx of the residual stream at every norm input (2 per block + the output norm).
class residual_covariance final : public llama_session::linear_observer {
 public:
  /// Accumulates every point, or only point `only` when it is given.
  residual_covariance(std::size_t points, std::size_t dim, std::size_t only = std::size_t(-1))
      : dim_(dim), only_(only), c_(points, std::vector<double>(only == std::size_t(-1) ? dim * dim : 0, 0.0)) {
    if (only != std::size_t(-1)) c_.at(only).assign(dim * dim, 0.0);
  }
  void on_linear_input(const std::string&, const matrix_view<const float>&) override {}
  void on_residual(std::size_t block, bool before_ffn, const matrix_view<const float>& x) override {
    if (only_ != std::size_t(-1) && 2 * block + (before_ffn ? 1 : 0) != only_) return;
    std::vector<double> xd(x.rows() * dim_);
    for (std::size_t t = 0; t < x.rows(); ++t)
      for (std::size_t i = 0; i < dim_; ++i) xd[t * dim_ + i] = x(t, i);
    std::vector<double>& c = c_.at(2 * block + (before_ffn ? 1 : 0));
    lapack::gemm<double>("slice_model", true, false, dim_, dim_, x.rows(), 1.0, xd.data(), xd.data(), 1.0, c.data());
  }
  const std::vector<double>& at(std::size_t p) const { return c_.at(p); }

  /// Runs the calibration windows through m (each from an empty cache).
  void run(const llama_model& m, const std::vector<std::vector<std::int32_t>>& windows) {
    for (const auto& w : windows) {
      if (w.empty()) continue;
      llama_session s(m);
      s.set_observer(this);
      std::vector<float> logits;
      s.forward(w.data(), w.size(), logits);
    }
  }

 private:
  std::size_t dim_, only_;
  std::vector<std::vector<double>> c_;
};

/// Dense weights of a linear in double, row-major [out, in].
inline std::vector<double> dense_double(const linear_layer& l) {
  std::vector<float> w(l.out_features() * l.in_features());
  l.dense_weights(matrix_view<float>(w.data(), l.out_features(), l.in_features()));
  return std::vector<double>(w.begin(), w.end());
}

/// W·diag(g)·Q̂ for W [rows, D] and Q̂ [D, d] → [rows, d] in float; either factor may be
/// null (no gain: W·Q̂; no Q̂: W·diag(g), d = D).
inline std::vector<float> read_side(std::vector<double> w, std::size_t rows, const std::vector<float>* gain,
                                    const std::vector<double>* qhat, std::size_t big_d, std::size_t d) {
  if (gain)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < big_d; ++j) w[r * big_d + j] *= double((*gain)[j]);
  if (!qhat) return std::vector<float>(w.begin(), w.end());
  std::vector<double> out(rows * d);
  lapack::gemm<double>("slice_model", false, false, rows, d, big_d, 1.0, w.data(), qhat->data(), 0.0, out.data());
  return std::vector<float>(out.begin(), out.end());
}

/// Q̂ᵀ·W for W [D, cols] → [d, cols] in float.
inline std::vector<float> write_side(const std::vector<double>& w, std::size_t cols, const std::vector<double>& qhat,
                                     std::size_t big_d, std::size_t d) {
  std::vector<double> out(d * cols);
  lapack::gemm<double>("slice_model", true, false, d, cols, big_d, 1.0, qhat.data(), w.data(), 0.0, out.data());
  return std::vector<float>(out.begin(), out.end());
}

inline std::unique_ptr<linear_layer> dense_from(const std::vector<float>& w, std::size_t rows, std::size_t cols) {
  return std::make_unique<dense_linear>(matrix_view<const float>(w.data(), rows, cols));
}


/// P = Q̂·Q̂ᵀ ([D, D], the projection onto the kept axes) from Q̂ [D, d].
inline std::vector<double> projection(const std::vector<double>& qhat, std::size_t big_d, std::size_t d) {
  std::vector<double> p(big_d * big_d);
  lapack::gemm<double>("slice_model", false, true, big_d, big_d, d, 1.0, qhat.data(), qhat.data(), 0.0, p.data());
  return p;
}

/// The paper's sequential calibration: the bases are found in forward order, each from the
/// signals of the model whose earlier points are already sliced. The partly sliced model is
/// run at full width D in "projected" form, which computes exactly what the sliced model
/// computes: gains folded (norm gains 1), every reading linear W·diag(α)·P_p, every writing
/// linear P_p·W, residual linears P_p, embedding E·P₀, with P_p = Q̂_p·Q̂_pᵀ (an RMSNorm over
/// D of a vector in a d-dimensional subspace equals the sliced model's norm with gain √(D/d)
/// and eps·D/d). Costs one calibration pass per point (2·blocks + 1).
template <class Truncate>
void sequential_bases(const llama_model& m, const std::vector<std::vector<std::int32_t>>& windows, std::size_t points,
                      std::size_t big_d, std::size_t d, Truncate&& truncate, std::vector<std::vector<double>>& qhat,
                      std::vector<std::vector<double>>& covs) {
  const std::size_t vocab = static_cast<std::size_t>(m.config.vocab_size);
  // W·diag(gain)·P (either optional; a writing linear with neither is copied as is), and P·W.
  auto fold = [&](const linear_layer& l, const std::vector<float>* gain, const std::vector<double>* p) {
    const std::size_t rows = l.out_features(), cols = l.in_features();
    return dense_from(read_side(dense_double(l), rows, gain, p, cols, cols), rows, cols);
  };
  auto project_rows = [&](const linear_layer& l, const std::vector<double>& p) {  // P·W (P symmetric: Pᵀ·W)
    return dense_from(write_side(dense_double(l), l.in_features(), p, big_d, big_d), big_d, l.in_features());
  };
  // The working model: gains folded, nothing projected yet.
  llama_model w;
  w.config = m.config;
  w.tied_classifier = false;
  w.token_embd = aligned_buffer<float>(vocab * big_d);
  std::copy(m.token_embd.data(), m.token_embd.data() + vocab * big_d, w.token_embd.data());
  for (const llama_block& o : m.blocks) {
    llama_block b;
    b.n_heads = o.n_heads;
    b.n_kv_heads = o.n_kv_heads;
    b.attn_norm.assign(big_d, 1.0f);
    b.ffn_norm.assign(big_d, 1.0f);
    b.wq = fold(*o.wq, &o.attn_norm, nullptr);
    b.wk = fold(*o.wk, &o.attn_norm, nullptr);
    b.wv = fold(*o.wv, &o.attn_norm, nullptr);
    b.wo = fold(*o.wo, nullptr, nullptr);
    b.w1 = fold(*o.w1, &o.ffn_norm, nullptr);
    b.w3 = fold(*o.w3, &o.ffn_norm, nullptr);
    b.w2 = fold(*o.w2, nullptr, nullptr);
    w.blocks.push_back(std::move(b));
  }
  w.output_norm.assign(big_d, 1.0f);
  w.output = fold(*m.output, &m.output_norm, nullptr);
  for (std::size_t p = 0; p < points; ++p) {
    residual_covariance cov(points, big_d, p);
    cov.run(w, windows);
    covs[p] = cov.at(p);
    qhat[p] = truncate(covs[p]);
    const std::vector<double> proj = projection(qhat[p], big_d, d);
    // Slice point p in the working model: what writes to it, then what reads from it.
    if (p == 0) {
      std::vector<double> e(w.token_embd.data(), w.token_embd.data() + vocab * big_d), ep(vocab * big_d);
      lapack::gemm<double>("slice_model", false, false, vocab, big_d, big_d, 1.0, e.data(), proj.data(), 0.0, ep.data());
      std::copy(ep.begin(), ep.end(), w.token_embd.data());
    } else {
      llama_block& b = w.blocks[(p - 1) / 2];
      const bool after_attn = p % 2 == 1;
      (after_attn ? b.wo : b.w2) = project_rows(after_attn ? *b.wo : *b.w2, proj);
      (after_attn ? b.attn_shortcut : b.ffn_shortcut) = dense_from(std::vector<float>(proj.begin(), proj.end()), big_d, big_d);
    }
    if (p + 1 == points) break;  // the head reads the last point; nothing after it to calibrate
    if (p % 2 == 0) {
      llama_block& b = w.blocks[p / 2];
      b.wq = fold(*b.wq, nullptr, &proj);
      b.wk = fold(*b.wk, nullptr, &proj);
      b.wv = fold(*b.wv, nullptr, &proj);
    } else {
      llama_block& b = w.blocks[p / 2];
      b.w1 = fold(*b.w1, nullptr, &proj);
      b.w3 = fold(*b.w3, nullptr, &proj);
    }
  }
}

}  // namespace detail

/// Slices the residual width of `m` by opt.fraction using calibration `windows` (each run
/// from an empty cache). See the header comment; returns what changed.
inline slicegpt_report slice_model(llama_model& m, const std::vector<std::vector<std::int32_t>>& windows,
                                   const slicegpt_options& opt = {}) {
  const char* where = "slice_model";
  const llama_config& c = m.config;
  if (!(opt.fraction >= 0.0 && opt.fraction < 1.0))
    detail::fail<argument_error>(where, ": argument 'fraction': expected a value in [0, 1), got ", opt.fraction);
  if (opt.round_to == 0) detail::fail<argument_error>(where, ": argument 'round_to': expected >= 1, got 0");
  std::size_t tokens = 0;
  for (const auto& w : windows) tokens += w.size();
  if (tokens == 0) detail::fail<argument_error>(where, ": argument 'windows': expected calibration tokens, got none");
  for (const std::string& name : m.linear_names())
    if (m.linear(name).format() != "f32")
      detail::fail<unsupported_error>(where, ": layer '", name, "': expected a dense f32 layer, got format '",
                                      m.linear(name).format(), "' (slice before quantizing or factorizing)");
  for (std::size_t l = 0; l < m.blocks.size(); ++l)
    if (m.blocks[l].has_shortcuts())
      detail::fail<unsupported_error>(where, ": block ", l, ": already has residual linears (sliced before)");

  const std::size_t big_d = static_cast<std::size_t>(c.dim), L = m.blocks.size(), points = 2 * L + 1;
  std::size_t d = big_d - static_cast<std::size_t>(std::floor(opt.fraction * double(big_d) + 1e-9));
  d = d / opt.round_to * opt.round_to;
  if (d == 0)
    detail::fail<argument_error>(where, ": fraction ", opt.fraction, " with round_to ", opt.round_to,
                                 " leaves no residual dimension of ", big_d);

  // 1-2. Covariances of the residual stream at every norm input, and the bases Q̂_p (the
  // first d principal axes, row-major [D, d]).
  slicegpt_report rep;
  rep.old_dim = big_d;
  rep.new_dim = d;
  rep.weights_before = m.weight_count();
  auto truncate = [&](const std::vector<double>& cp) {
    const principal_axes_result pa = principal_axes(cp, big_d, opt.damping);
    std::vector<double> qh(big_d * d);
    for (std::size_t i = 0; i < big_d; ++i)
      for (std::size_t j = 0; j < d; ++j) qh[i * d + j] = pa.q[i * big_d + j];
    return qh;
  };
  auto kept = [&](const std::vector<double>& cp, const std::vector<double>& qh) {  // tr(Q̂ᵀ C Q̂) / tr(C)
    double tr = 0, k = 0;
    for (std::size_t i = 0; i < big_d; ++i) tr += cp[i * big_d + i];
    for (std::size_t j = 0; j < d; ++j)
      for (std::size_t a = 0; a < big_d; ++a) {
        double row = 0;
        for (std::size_t b = 0; b < big_d; ++b) row += cp[a * big_d + b] * qh[b * d + j];
        k += qh[a * d + j] * row;
      }
    return tr > 0 ? k / tr : 1.0;
  };
  std::vector<std::vector<double>> qhat(points), covs(points);
  if (opt.mode == slicegpt_options::rotation::per_point && opt.sequential) {
    detail::sequential_bases(m, windows, points, big_d, d, truncate, qhat, covs);
  } else {
    detail::residual_covariance cov(points, big_d);
    cov.run(m, windows);
    for (std::size_t p = 0; p < points; ++p) covs[p] = cov.at(p);
    if (opt.mode == slicegpt_options::rotation::global) {
      std::vector<double> sum(big_d * big_d, 0.0);
      for (std::size_t p = 0; p < points; ++p)
        for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += covs[p][i];
      const std::vector<double> qh = truncate(sum);
      for (std::size_t p = 0; p < points; ++p) qhat[p] = qh;
    } else {
      for (std::size_t p = 0; p < points; ++p) qhat[p] = truncate(covs[p]);
    }
  }
  for (std::size_t p = 0; p < points; ++p) rep.kept_variance.push_back(kept(covs[p], qhat[p]));

  // 3. New weights, all before the model changes.
  const std::size_t vocab = static_cast<std::size_t>(c.vocab_size);
  std::vector<double> embd(m.token_embd.data(), m.token_embd.data() + vocab * big_d);
  const std::vector<float> new_embd = detail::read_side(embd, vocab, nullptr, &qhat[0], big_d, d);
  const std::vector<float> new_head =
      detail::read_side(detail::dense_double(*m.output), vocab, &m.output_norm, &qhat[points - 1], big_d, d);
  struct block_weights {
    std::vector<float> wq, wk, wv, wo, w1, w2, w3, s_attn, s_ffn;
  };
  std::vector<block_weights> nb(L);
  auto shortcut = [&](const std::vector<double>& q_out, const std::vector<double>& q_in) {  // Q̂_outᵀ·Q̂_in
    std::vector<double> s(d * d);
    lapack::gemm<double>(where, true, false, d, d, big_d, 1.0, q_out.data(), q_in.data(), 0.0, s.data());
    return std::vector<float>(s.begin(), s.end());
  };
  for (std::size_t l = 0; l < L; ++l) {
    const llama_block& b = m.blocks[l];
    const std::vector<double>&qa = qhat[2 * l], &qf = qhat[2 * l + 1], &qo = qhat[2 * l + 2];
    block_weights& w = nb[l];
    w.wq = detail::read_side(detail::dense_double(*b.wq), b.wq->out_features(), &b.attn_norm, &qa, big_d, d);
    w.wk = detail::read_side(detail::dense_double(*b.wk), b.wk->out_features(), &b.attn_norm, &qa, big_d, d);
    w.wv = detail::read_side(detail::dense_double(*b.wv), b.wv->out_features(), &b.attn_norm, &qa, big_d, d);
    w.wo = detail::write_side(detail::dense_double(*b.wo), b.wo->in_features(), qf, big_d, d);
    w.w1 = detail::read_side(detail::dense_double(*b.w1), b.w1->out_features(), &b.ffn_norm, &qf, big_d, d);
    w.w3 = detail::read_side(detail::dense_double(*b.w3), b.w3->out_features(), &b.ffn_norm, &qf, big_d, d);
    w.w2 = detail::write_side(detail::dense_double(*b.w2), b.w2->in_features(), qo, big_d, d);
    if (opt.mode == slicegpt_options::rotation::per_point) {
      w.s_attn = shortcut(qf, qa);
      w.s_ffn = shortcut(qo, qf);
    }
  }

  // 4. The new layers, then a commit that cannot fail.
  const float gain = static_cast<float>(std::sqrt(double(big_d) / double(d)));
  llama_config nc = c;
  nc.head_dim = c.head_size();
  nc.dim = static_cast<int>(d);
  nc.norm_eps = static_cast<float>(double(c.norm_eps) * double(big_d) / double(d));
  std::vector<llama_block> blocks(L);
  for (std::size_t l = 0; l < L; ++l) {
    const llama_block& o = m.blocks[l];
    llama_block& b = blocks[l];
    const block_weights& w = nb[l];
    b.n_heads = o.n_heads;
    b.n_kv_heads = o.n_kv_heads;
    b.attn_norm.assign(d, gain);
    b.ffn_norm.assign(d, gain);
    b.wq = detail::dense_from(w.wq, o.wq->out_features(), d);
    b.wk = detail::dense_from(w.wk, o.wk->out_features(), d);
    b.wv = detail::dense_from(w.wv, o.wv->out_features(), d);
    b.wo = detail::dense_from(w.wo, d, o.wo->in_features());
    b.w1 = detail::dense_from(w.w1, o.w1->out_features(), d);
    b.w3 = detail::dense_from(w.w3, o.w3->out_features(), d);
    b.w2 = detail::dense_from(w.w2, d, o.w2->in_features());
    if (!w.s_attn.empty()) b.attn_shortcut = detail::dense_from(w.s_attn, d, d);
    if (!w.s_ffn.empty()) b.ffn_shortcut = detail::dense_from(w.s_ffn, d, d);
  }
  aligned_buffer<float> token_embd(vocab * d);
  std::copy(new_embd.begin(), new_embd.end(), token_embd.data());
  std::unique_ptr<linear_layer> head = detail::dense_from(new_head, vocab, d);
  m.blocks = std::move(blocks);
  m.token_embd = std::move(token_embd);
  m.output = std::move(head);
  m.output_norm.assign(d, gain);
  m.tied_classifier = false;
  m.config = nc;
  rep.weights_after = m.weight_count();
  return rep;
}

PARE_NAMESPACE_END
