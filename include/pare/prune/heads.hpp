// Attention-head criteria and masks with grouped-query attention: a key/value head carries its group of query heads.
#pragma once

// Layout (PyTorch / GGUF [out, in]): wq [H·d, dim], wk and wv [Hkv·d, dim], wo [dim, H·d]
// with H query heads, Hkv key/value heads (Hkv divides H) and head size d = rows(wq) / H.
// Query head h owns rows h·d .. h·d + d − 1 of wq and the same columns of wo; it reads
// key/value head h / (H / Hkv) (consecutive query heads share one, as llama.cpp and
// pare's llama_session do), which owns rows of wk and wv likewise.
//
// attention_head_scores(wq, wk, wv, wo, H, Hkv, norm) returns
//   query[h]  the query head's own weights: its rows of wq and its columns of wo
//   kv[g]     the prunable unit under grouped-query attention: key/value head g's rows of
//             wk and wv together with the whole group of query heads that read it
// summarised by unit_norm::l1 (Σ|w| over all of the unit's weights) or unit_norm::l2
// (√Σw² over them: the Frobenius norm of the unit). With Hkv = H each unit is one head.
// Sums are in double, rounded to float once.
//
// kv_head_masks(layout, keep) / query_head_masks(layout, keep) turn a keep-list
// (e.g. keep_top(scores.kv, n)) into one mask per matrix: rows of wq, wk, wv and columns
// of wo. Removing query heads alone leaves wk / wv whole.

#include <cmath>
#include <cstddef>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/prune/mask.hpp"
#include "pare/prune/scores.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// Shape of one attention block's heads.
struct attention_layout {
  std::size_t dim = 0;         ///< model width: columns of wq, wk, wv; rows of wo
  std::size_t n_heads = 0;     ///< query heads H
  std::size_t n_kv_heads = 0;  ///< key/value heads Hkv (divides H)
  std::size_t head_dim = 0;    ///< d

  /// Query heads per key/value head.
  std::size_t group() const noexcept { return n_kv_heads ? n_heads / n_kv_heads : 0; }
  /// The key/value head that query head q reads.
  std::size_t kv_head_of(std::size_t q) const noexcept { return q / group(); }

  /// Validated layout. argument_error naming 'n_heads' or 'n_kv_heads' when a count is 0
  /// or Hkv does not divide H; 'head_dim' / 'dim' when 0.
  static attention_layout make(std::size_t dim, std::size_t n_heads, std::size_t n_kv_heads, std::size_t head_dim) {
    const char* where = "pare::prune::attention_layout";
    if (n_heads == 0) pare::detail::fail<argument_error>(where, ": argument 'n_heads': expected at least 1, got 0");
    if (n_kv_heads == 0 || n_heads % n_kv_heads != 0)
      pare::detail::fail<argument_error>(where, ": argument 'n_kv_heads': expected a divisor of n_heads = ", n_heads,
                                         ", got ", n_kv_heads);
    if (head_dim == 0) pare::detail::fail<argument_error>(where, ": argument 'head_dim': expected at least 1, got 0");
    if (dim == 0) pare::detail::fail<argument_error>(where, ": argument 'dim': expected at least 1, got 0");
    return attention_layout{dim, n_heads, n_kv_heads, head_dim};
  }

  /// The layout of the four projections, checking their shapes (shape_error naming the
  /// matrix) and head counts (argument_error naming 'n_heads' / 'n_kv_heads').
  static attention_layout of(const matrix_view<const float>& wq, const matrix_view<const float>& wk,
                             const matrix_view<const float>& wv, const matrix_view<const float>& wo,
                             std::size_t n_heads, std::size_t n_kv_heads) {
    const char* where = "pare::prune::attention_layout::of";
    if (n_heads == 0) pare::detail::fail<argument_error>(where, ": argument 'n_heads': expected at least 1, got 0");
    if (wq.rows() == 0 || wq.rows() % n_heads != 0)
      pare::detail::fail<argument_error>(where, ": argument 'n_heads': expected a divisor of the ", wq.rows(),
                                         " rows of wq, got ", n_heads);
    const attention_layout l = make(wq.cols(), n_heads, n_kv_heads, wq.rows() / n_heads);
    const std::size_t kv_rows = l.n_kv_heads * l.head_dim;
    if (wk.rows() != kv_rows || wk.cols() != l.dim)
      pare::detail::fail<shape_error>(where, ": argument 'wk': expected shape [", kv_rows, ", ", l.dim, "], got ", wk.shape());
    if (wv.rows() != kv_rows || wv.cols() != l.dim)
      pare::detail::fail<shape_error>(where, ": argument 'wv': expected shape [", kv_rows, ", ", l.dim, "], got ", wv.shape());
    if (wo.rows() != l.dim || wo.cols() != wq.rows())
      pare::detail::fail<shape_error>(where, ": argument 'wo': expected shape [", l.dim, ", ", wq.rows(), "], got ", wo.shape());
    return l;
  }
};

/// Per-head scores (see the essay above).
struct head_scores {
  score_vector query;  ///< one per query head: its rows of wq and columns of wo
  score_vector kv;     ///< one per key/value head with its group of query heads
};

/// Attention-head scores of one block (see the essay above). Errors: see
/// attention_layout::of; value_error naming the matrix for a non-finite weight.
inline head_scores attention_head_scores(const matrix_view<const float>& wq, const matrix_view<const float>& wk,
                                         const matrix_view<const float>& wv, const matrix_view<const float>& wo,
                                         std::size_t n_heads, std::size_t n_kv_heads, unit_norm norm) {
  const char* where = "pare::prune::attention_head_scores";
  const attention_layout l = attention_layout::of(wq, wk, wv, wo, n_heads, n_kv_heads);
  detail::check_finite(where, "wq", wq);
  detail::check_finite(where, "wk", wk);
  detail::check_finite(where, "wv", wv);
  detail::check_finite(where, "wo", wo);
  auto term = [norm](double v) { return norm == unit_norm::l1 ? std::fabs(v) : v * v; };
  auto finish = [norm](double s) { return static_cast<float>(norm == unit_norm::l1 ? s : std::sqrt(s)); };
  const std::size_t d = l.head_dim;
  std::vector<double> q(l.n_heads, 0.0), kv(l.n_kv_heads, 0.0);
  for (std::size_t h = 0; h < l.n_heads; ++h) {
    double s = 0.0;
    for (std::size_t r = h * d; r < (h + 1) * d; ++r)
      for (std::size_t j = 0; j < l.dim; ++j) s += term(wq(r, j));
    for (std::size_t i = 0; i < l.dim; ++i)
      for (std::size_t c = h * d; c < (h + 1) * d; ++c) s += term(wo(i, c));
    q[h] = s;
  }
  for (std::size_t g = 0; g < l.n_kv_heads; ++g) {
    double s = 0.0;
    for (std::size_t r = g * d; r < (g + 1) * d; ++r)
      for (std::size_t j = 0; j < l.dim; ++j) s += term(wk(r, j)) + term(wv(r, j));
    for (std::size_t h = g * l.group(); h < (g + 1) * l.group(); ++h) s += q[h];
    kv[g] = s;
  }
  head_scores out;
  out.query.resize(l.n_heads);
  out.kv.resize(l.n_kv_heads);
  for (std::size_t h = 0; h < l.n_heads; ++h) out.query[h] = finish(q[h]);
  for (std::size_t g = 0; g < l.n_kv_heads; ++g) out.kv[g] = finish(kv[g]);
  return out;
}

/// One mask per projection of an attention block.
struct attention_masks {
  mask q, k, v, o;
};

namespace detail {
inline attention_masks head_masks(const char* where, const char* what, const attention_layout& l,
                                  const std::vector<std::size_t>& keep_q, const std::vector<std::uint8_t>& kv_kept) {
  const std::vector<std::uint8_t> qf = keep_flags(where, what, keep_q, l.n_heads);
  const std::size_t d = l.head_dim, qrows = l.n_heads * d, kvrows = l.n_kv_heads * d;
  attention_masks m{mask(qrows, l.dim, false), mask(kvrows, l.dim, false), mask(kvrows, l.dim, false),
                    mask(l.dim, qrows, false)};
  for (std::size_t r = 0; r < qrows; ++r)
    for (std::size_t j = 0; j < l.dim; ++j) m.q.set(r, j, qf[r / d] != 0);
  for (std::size_t i = 0; i < l.dim; ++i)
    for (std::size_t c = 0; c < qrows; ++c) m.o.set(i, c, qf[c / d] != 0);
  for (std::size_t r = 0; r < kvrows; ++r)
    for (std::size_t j = 0; j < l.dim; ++j) {
      m.k.set(r, j, kv_kept[r / d] != 0);
      m.v.set(r, j, kv_kept[r / d] != 0);
    }
  return m;
}
/// The attention_layout::make checks (argument_error naming the field).
inline void check_layout(const attention_layout& l) {
  (void)attention_layout::make(l.dim, l.n_heads, l.n_kv_heads, l.head_dim);
}
}  // namespace detail

/// Masks keeping key/value heads `keep_kv` together with their query heads (GQA groups
/// stay whole). argument_error naming 'keep_kv' for an index out of range or repeated.
inline attention_masks kv_head_masks(const attention_layout& layout, const std::vector<std::size_t>& keep_kv) {
  const char* where = "pare::prune::kv_head_masks";
  detail::check_layout(layout);
  const std::vector<std::uint8_t> kf = detail::keep_flags(where, "keep_kv", keep_kv, layout.n_kv_heads);
  std::vector<std::size_t> keep_q;
  for (std::size_t h = 0; h < layout.n_heads; ++h)
    if (kf[layout.kv_head_of(h)]) keep_q.push_back(h);
  return detail::head_masks(where, "keep_kv", layout, keep_q, kf);
}

/// Masks keeping query heads `keep_query` (rows of wq, columns of wo); wk and wv stay
/// whole. argument_error naming 'keep_query' for an index out of range or repeated.
inline attention_masks query_head_masks(const attention_layout& layout, const std::vector<std::size_t>& keep_query) {
  const char* where = "pare::prune::query_head_masks";
  detail::check_layout(layout);
  return detail::head_masks(where, "keep_query", layout, keep_query, std::vector<std::uint8_t>(layout.n_kv_heads, 1));
}

}  // namespace prune
PARE_NAMESPACE_END
