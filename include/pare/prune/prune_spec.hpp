// prune_spec: the runtime form of pruner<Criterion, Granularity, Schedule>, parsed from strings such as "nm:2:4:wanda" or "depth:2:taylor+", and the engines that apply it to a matrix or a block_model.
#pragma once

// Grammar (fields separated by ':'; s a fraction in [0, 1), n a count):
//   unstructured:<s>:<magnitude|wanda|taylor>[:global][:iter=<k>]
//   nm:<n>:<m>:<magnitude|wanda|taylor>                       (1 <= n <= m)
//   rows:<s>:<magnitude|wanda|taylor>[:l1|:l2][:iter=<k>]     whole output rows
//   columns:<s>:<magnitude|wanda|taylor>[:l1|:l2][:iter=<k>]  whole input columns
//   depth:<n>:<ppl|taylor|taylor+|magnitude>[:iter]           n whole blocks
//   ffn:<s>:<magnitude|activation|activation_l2|apoz>[:iter=<k>]  FFN neurons
//   heads:<s>:magnitude[:iter=<k>]                             KV heads (GQA groups)
// str() gives the canonical form, which parses back to an equal spec. Criteria and
// granularities are those of granularity.hpp and model_criteria.hpp; scores use the
// ranking of scores.hpp (equal scores keep the lower index).
//
// prune_matrix(w, spec, ctx) → mask for the matrix granularities: the criterion scores w
// (wanda reads ctx.stats, taylor ctx.grad), the granularity turns scores into a mask;
// iterative reaches the target in k equal steps, re-scoring the masked weights each time
// (pruned weights score 0 and stay pruned). N:M is one-shot only.
// prune_model(m, spec) for the model granularities: depth removes spec.count blocks (one
// per step when iterative); ffn keeps round((1 − s)·hidden) neurons in every block (the
// same width everywhere); heads keeps round((1 − s)·n_kv) KV heads in every block (at
// least one). Everything is scored and checked before the model changes, except that an
// iterative schedule changes it step by step (and re-captures statistics between steps).
// Bad input → argument_error naming the field; the model or matrix is unchanged.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/strings.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/prune/block_model.hpp"
#include "pare/prune/granularity.hpp"
#include "pare/prune/magnitude.hpp"
#include "pare/prune/mask.hpp"
#include "pare/prune/model_criteria.hpp"
#include "pare/prune/nm.hpp"
#include "pare/prune/schedule.hpp"
#include "pare/prune/scores.hpp"
#include "pare/prune/taylor.hpp"
#include "pare/prune/wanda.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// The runtime form of a criterion policy.
enum class criterion_kind { magnitude, wanda, taylor, taylor_plus, ppl_drop, activation, activation_l2, apoz };

inline const char* to_string(criterion_kind c) noexcept {
  switch (c) {
    case criterion_kind::magnitude: return "magnitude";
    case criterion_kind::wanda: return "wanda";
    case criterion_kind::taylor: return "taylor";
    case criterion_kind::taylor_plus: return "taylor+";
    case criterion_kind::ppl_drop: return "ppl";
    case criterion_kind::activation: return "activation";
    case criterion_kind::activation_l2: return "activation_l2";
    case criterion_kind::apoz: return "apoz";
  }
  return "?";
}

struct prune_spec {
  granularity_kind granularity = granularity_kind::unstructured;
  criterion_kind criterion = criterion_kind::magnitude;
  scope group = scope::per_row;    ///< unstructured
  std::size_t n = 2, m = 4;        ///< n_m
  unit_norm norm = unit_norm::l2;  ///< rows / columns
  double sparsity = 0.5;           ///< fraction removed (all but n_m and depth)
  std::size_t count = 1;           ///< depth: blocks removed
  std::size_t keep_first = 0, keep_last = 0;  ///< depth: blocks never removed (taylor+: 1 and 1)
  schedule_kind schedule = schedule_kind::one_shot;
  std::size_t steps = 1;           ///< iterative (depth: one block per step)

  bool is_model_level() const noexcept { return !is_matrix_granularity(granularity); }
  /// Needs calibration statistics of the layer's inputs (matrix) or the model's hidden activations.
  bool needs_statistics() const noexcept {
    return criterion == criterion_kind::wanda || criterion == criterion_kind::activation ||
           criterion == criterion_kind::activation_l2 || criterion == criterion_kind::apoz;
  }
  /// Needs calibration text through the model (statistics, gradients or perplexity).
  bool needs_calibration() const noexcept {
    return needs_statistics() || criterion == criterion_kind::ppl_drop || criterion == criterion_kind::taylor ||
           criterion == criterion_kind::taylor_plus;
  }

  /// argument_error naming the field unless the combination is supported and in range.
  void validate(const char* where = "pare::prune::prune_spec") const {
    auto bad = [&](const char* field, const std::string& msg) {
      pare::detail::fail<argument_error>(where, ": argument '", field, "': ", msg);
    };
    const bool matrix = is_matrix_granularity(granularity);
    const bool weight_criterion = criterion == criterion_kind::magnitude || criterion == criterion_kind::wanda ||
                                  criterion == criterion_kind::taylor;
    if (matrix && !weight_criterion)
      bad("criterion", pare::detail::concat("expected magnitude, wanda or taylor for ", to_string(granularity), ", got ",
                                            to_string(criterion)));
    if (granularity == granularity_kind::depth_blocks && !(criterion == criterion_kind::ppl_drop ||
                                                         criterion == criterion_kind::taylor ||
                                                         criterion == criterion_kind::taylor_plus ||
                                                         criterion == criterion_kind::magnitude))
      bad("criterion", pare::detail::concat("expected ppl, taylor, taylor+ or magnitude for depth, got ", to_string(criterion)));
    if (granularity == granularity_kind::ffn_neurons &&
        !(criterion == criterion_kind::magnitude || criterion == criterion_kind::activation ||
          criterion == criterion_kind::activation_l2 || criterion == criterion_kind::apoz))
      bad("criterion", pare::detail::concat("expected magnitude, activation, activation_l2 or apoz for ffn, got ",
                                            to_string(criterion)));
    if (granularity == granularity_kind::kv_heads && criterion != criterion_kind::magnitude)
      bad("criterion", pare::detail::concat("expected magnitude for heads, got ", to_string(criterion)));
    if (granularity == granularity_kind::n_m && (n < 1 || n > m))
      bad("n", pare::detail::concat("expected integers 1 <= N <= M, got ", n, ":", m));
    if (granularity != granularity_kind::n_m && granularity != granularity_kind::depth_blocks &&
        !(sparsity >= 0.0 && sparsity < 1.0))
      bad("sparsity", pare::detail::concat("expected a fraction in [0, 1), got ", sparsity));
    if (granularity == granularity_kind::depth_blocks && count == 0)
      bad("count", "expected a block count n >= 1, got 0");
    if (schedule == schedule_kind::iterative && steps == 0) bad("steps", "expected at least 1 step, got 0");
    if (schedule == schedule_kind::iterative && granularity == granularity_kind::n_m)
      bad("schedule", "N:M masks are one-shot (each group keeps exactly N)");
    if (schedule == schedule_kind::gradual && granularity != granularity_kind::unstructured)
      bad("schedule", "the gradual (cubic) schedule extends unstructured masks during training");
  }

  /// Parses the grammar above; argument_error naming the step and the bad field.
  static prune_spec parse(const std::string& text) {
    const std::vector<std::string> t = split(text, ':');
    auto bad = [&](const std::string& why) {
      pare::detail::fail<argument_error>("pare::prune::prune_spec::parse('", text, "'): ", why);
    };
    auto fraction = [&](const std::string& v, const char* what) {
      const auto d = parse_number(v);
      if (!d || !(*d >= 0.0 && *d < 1.0)) bad(std::string("expected a ") + what + " in [0, 1), got '" + v + "'");
      return *d;
    };
    auto weight_criterion = [&](const std::string& c) {
      if (c == "magnitude") return criterion_kind::magnitude;
      if (c == "wanda") return criterion_kind::wanda;
      if (c == "taylor") return criterion_kind::taylor;
      bad("expected the criterion magnitude, wanda or taylor, got '" + c + "'");
      return criterion_kind::magnitude;
    };
    // Options after the fixed fields: "global", "l1", "l2", "iter", "iter=<k>".
    auto options = [&](prune_spec& p, std::size_t from, bool allow_global, bool allow_norm, bool allow_iter_k,
                       bool allow_iter) {
      for (std::size_t i = from; i < t.size(); ++i) {
        const std::string& o = t[i];
        if (o == "global" && allow_global) p.group = scope::global;
        else if ((o == "l1" || o == "l2") && allow_norm) p.norm = o == "l1" ? unit_norm::l1 : unit_norm::l2;
        else if (o == "iter" && allow_iter) p.schedule = schedule_kind::iterative;
        else if (o.rfind("iter=", 0) == 0 && allow_iter_k) {
          const auto k = parse_unsigned(o.substr(5), 1000000);
          if (!k || *k == 0) bad("expected iter=<k> with k >= 1 steps, got '" + o + "'");
          p.schedule = schedule_kind::iterative;
          p.steps = static_cast<std::size_t>(*k);
        } else {
          std::string allowed;
          if (allow_global) allowed += " global";
          if (allow_norm) allowed += " l1 l2";
          if (allow_iter) allowed += " iter";
          if (allow_iter_k) allowed += " iter=<k>";
          bad("unknown option '" + o + "' (expected" + (allowed.empty() ? std::string(" none") : allowed) + ")");
        }
      }
    };
    prune_spec p;
    const std::string& g = t[0];
    if (g == "unstructured") {
      if (t.size() < 3) bad("expected unstructured:<s>:<magnitude|wanda|taylor>[:global][:iter=<k>]");
      p.granularity = granularity_kind::unstructured;
      p.sparsity = fraction(t[1], "sparsity");
      p.criterion = weight_criterion(t[2]);
      options(p, 3, true, false, true, false);
    } else if (g == "nm") {
      if (t.size() != 4) bad("expected nm:<n>:<m>:<magnitude|wanda|taylor>");
      const auto n = parse_unsigned(t[1], 1 << 20), m = parse_unsigned(t[2], 1 << 20);
      if (!n || !m || *n < 1 || *n > *m) bad("expected integers 1 <= N <= M, got " + t[1] + ":" + t[2]);
      p.granularity = granularity_kind::n_m;
      p.n = static_cast<std::size_t>(*n);
      p.m = static_cast<std::size_t>(*m);
      p.criterion = weight_criterion(t[3]);
    } else if (g == "rows" || g == "columns") {
      if (t.size() < 3) bad("expected " + g + ":<s>:<magnitude|wanda|taylor>[:l1|:l2][:iter=<k>]");
      p.granularity = g == "rows" ? granularity_kind::rows : granularity_kind::columns;
      p.sparsity = fraction(t[1], "sparsity");
      p.criterion = weight_criterion(t[2]);
      options(p, 3, false, true, true, false);
    } else if (g == "depth") {
      if (t.size() < 3) bad("expected depth:<n>:<ppl|taylor|taylor+|magnitude>[:iter]");
      const auto n = parse_unsigned(t[1], 1000000);
      if (!n || *n == 0) bad("expected a block count n >= 1, got '" + t[1] + "'");
      p.granularity = granularity_kind::depth_blocks;
      p.count = static_cast<std::size_t>(*n);
      const std::string& c = t[2];
      if (c == "ppl") p.criterion = criterion_kind::ppl_drop;
      else if (c == "taylor") p.criterion = criterion_kind::taylor;
      else if (c == "taylor+") {
        p.criterion = criterion_kind::taylor_plus;
        p.keep_first = p.keep_last = 1;
      }
      else if (c == "magnitude") p.criterion = criterion_kind::magnitude;
      else bad("expected the criterion ppl, taylor, taylor+ or magnitude, got '" + c + "'");
      options(p, 3, false, false, false, true);
      if (p.schedule == schedule_kind::iterative) p.steps = p.count;
    } else if (g == "ffn") {
      if (t.size() < 3) bad("expected ffn:<fraction>:<magnitude|activation|activation_l2|apoz>[:iter=<k>]");
      p.granularity = granularity_kind::ffn_neurons;
      p.sparsity = fraction(t[1], "fraction");
      const std::string& c = t[2];
      if (c == "magnitude") p.criterion = criterion_kind::magnitude;
      else if (c == "activation") p.criterion = criterion_kind::activation;
      else if (c == "activation_l2") p.criterion = criterion_kind::activation_l2;
      else if (c == "apoz") p.criterion = criterion_kind::apoz;
      else bad("expected the criterion magnitude, activation, activation_l2 or apoz, got '" + c + "'");
      options(p, 3, false, false, true, false);
    } else if (g == "heads") {
      if (t.size() < 3 || t[2] != "magnitude") bad("expected heads:<fraction>:magnitude[:iter=<k>]");
      p.granularity = granularity_kind::kv_heads;
      p.sparsity = fraction(t[1], "fraction");
      p.criterion = criterion_kind::magnitude;
      options(p, 3, false, false, true, false);
    } else {
      bad("expected unstructured:, nm:, rows:, columns:, depth:, ffn: or heads: first, got '" + g + "'");
    }
    p.validate("pare::prune::prune_spec::parse");
    return p;
  }

  /// The canonical string (parses back to an equal spec).
  std::string str() const {
    auto num = [](double v) { return shortest_decimal(v); };
    std::string s;
    switch (granularity) {
      case granularity_kind::unstructured: s = "unstructured:" + num(sparsity) + ":" + to_string(criterion); break;
      case granularity_kind::n_m: s = pare::detail::concat("nm:", n, ":", m, ":", to_string(criterion)); break;
      case granularity_kind::rows:
      case granularity_kind::columns:
        s = std::string(to_string(granularity)) + ":" + num(sparsity) + ":" + to_string(criterion) +
            (norm == unit_norm::l1 ? ":l1" : ":l2");
        break;
      case granularity_kind::depth_blocks: s = pare::detail::concat("depth:", count, ":", to_string(criterion)); break;
      case granularity_kind::ffn_neurons: s = "ffn:" + num(sparsity) + ":" + to_string(criterion); break;
      case granularity_kind::kv_heads: s = "heads:" + num(sparsity) + ":magnitude"; break;
    }
    if (granularity == granularity_kind::unstructured && group == scope::global) s += ":global";
    if (schedule == schedule_kind::iterative)
      s += granularity == granularity_kind::depth_blocks ? std::string(":iter") : pare::detail::concat(":iter=", steps);
    return s;
  }

  friend bool operator==(const prune_spec& a, const prune_spec& b) { return a.str() == b.str(); }
  friend bool operator!=(const prune_spec& a, const prune_spec& b) { return !(a == b); }
};

// ---- matrices -------------------------------------------------------------

/// What matrix criteria read besides the weights.
struct matrix_context {
  const linear_input_stats* stats = nullptr;  ///< wanda: the layer's input statistics
  const matrix_view<const float>* grad = nullptr;  ///< taylor: ∂L/∂w of w's shape
};

namespace detail {
/// Per-weight scores of w under the spec's criterion.
inline score_matrix score_weights(const prune_spec& spec, const matrix_view<const float>& w, const matrix_context& ctx) {
  switch (spec.criterion) {
    case criterion_kind::magnitude: return magnitude{}(w);
    case criterion_kind::wanda:
      if (!ctx.stats)
        pare::detail::fail<argument_error>("pare::prune::prune_matrix: criterion 'wanda' needs the layer's input statistics "
                                           "(matrix_context::stats), got none");
      return wanda(*ctx.stats)(w);
    case criterion_kind::taylor:
      if (!ctx.grad)
        pare::detail::fail<argument_error>("pare::prune::prune_matrix: criterion 'taylor' needs the gradient "
                                           "(matrix_context::grad), got none");
      return taylor(*ctx.grad)(w);
    default:
      pare::detail::fail<argument_error>("pare::prune::prune_matrix: argument 'spec': criterion ", to_string(spec.criterion),
                                         " does not score weights");
  }
}

/// Keeps the units (rows or columns) with the highest unit scores, ⌊s·units⌋ pruned,
/// never re-admitting units already pruned in `current`.
inline mask unit_mask(const prune_spec& spec, const score_vector& unit_scores, std::size_t rows, std::size_t cols,
                      double sparsity, const mask* current) {
  const bool by_rows = spec.granularity == granularity_kind::rows;
  const std::size_t units = by_rows ? rows : cols;
  std::vector<float> s = unit_scores;
  if (current)
    for (std::size_t u = 0; u < units; ++u)
      if ((by_rows ? current->row_count(u) : current->col_count(u)) == 0) s[u] = -std::numeric_limits<float>::infinity();
  std::vector<std::uint8_t> keep(units, 1);
  std::vector<float> scratch;
  mark_lowest(s.data(), units, floor_count(sparsity, units), keep.data(), scratch);
  std::vector<std::size_t> kept;
  for (std::size_t u = 0; u < units; ++u)
    if (keep[u]) kept.push_back(u);
  return by_rows ? row_mask(rows, cols, kept) : column_mask(rows, cols, kept);
}

/// One scoring-and-masking step to `sparsity` from `current` (null: nothing pruned yet).
inline mask matrix_step(const prune_spec& spec, const score_matrix& scores, double sparsity, const mask* current) {
  const std::size_t rows = scores.rows(), cols = scores.cols();
  switch (spec.granularity) {
    case granularity_kind::unstructured:
      return current ? extend(*current, scores.view(), sparsity, spec.group) : unstructured_mask(scores.view(), sparsity, spec.group);
    case granularity_kind::n_m: return nm_mask(scores.view(), spec.n, spec.m);
    case granularity_kind::rows: return unit_mask(spec, row_norms(scores.view(), spec.norm), rows, cols, sparsity, current);
    case granularity_kind::columns:
      return unit_mask(spec, column_norms(scores.view(), spec.norm), rows, cols, sparsity, current);
    default: break;
  }
  pare::detail::fail<argument_error>("pare::prune::prune_matrix: argument 'spec': ", to_string(spec.granularity),
                                     " prunes a model, not a matrix (prune_model)");
}

/// The matrix engine with a scoring function score(const matrix_view<const float>&).
template <class Score>
mask prune_matrix_with(const prune_spec& spec, const matrix_view<const float>& w, Score&& score) {
  spec.validate("pare::prune::prune_matrix");
  if (spec.schedule == schedule_kind::gradual)
    pare::detail::fail<argument_error>("pare::prune::prune_matrix: argument 'spec': the gradual schedule runs during "
                                       "training (pruner<..., gradual>::update)");
  if (spec.schedule == schedule_kind::one_shot || spec.steps <= 1) return matrix_step(spec, score(w), spec.sparsity, nullptr);
  std::vector<float> masked(w.rows() * w.cols());
  const matrix_view<float> mv(masked.data(), w.rows(), w.cols());
  mask cur(w.rows(), w.cols(), true);
  for (std::size_t k = 1; k <= spec.steps; ++k) {
    for (std::size_t i = 0; i < w.rows(); ++i)
      for (std::size_t j = 0; j < w.cols(); ++j) mv(i, j) = cur.kept(i, j) ? w(i, j) : 0.0f;
    const double s = spec.sparsity * double(k) / double(spec.steps);
    cur = matrix_step(spec, score(matrix_view<const float>(mv)), s, &cur);
  }
  return cur;
}
}  // namespace detail

/// The mask spec gives for w [out, in] (see the header comment).
inline mask prune_matrix(const matrix_view<const float>& w, const prune_spec& spec, const matrix_context& ctx = {}) {
  return detail::prune_matrix_with(spec, w, [&](const matrix_view<const float>& x) { return detail::score_weights(spec, x, ctx); });
}

// ---- models ---------------------------------------------------------------

/// What prune_model changed.
struct model_prune_result {
  std::vector<std::size_t> removed_blocks;  ///< depth: original indices, in removal order
  std::size_t ffn_width = 0;                ///< ffn: hidden neurons kept per block
  std::size_t kv_heads = 0;                 ///< heads: KV heads kept per block
};

namespace detail {
inline std::vector<double> block_scores(const prune_spec& spec, block_model& m) {
  switch (spec.criterion) {
    case criterion_kind::ppl_drop: return block_importance(ppl_drop{}, m);
    case criterion_kind::taylor:
    case criterion_kind::taylor_plus: return block_importance(taylor{}, m);
    case criterion_kind::magnitude: return block_importance(magnitude{}, m);
    default: break;
  }
  pare::detail::fail<argument_error>("pare::prune::prune_model: criterion ", to_string(spec.criterion), " does not score blocks");
}
inline std::vector<double> ffn_scores(const prune_spec& spec, const ffn_view& f) {
  switch (spec.criterion) {
    case criterion_kind::magnitude: return neuron_importance(magnitude{}, f);
    case criterion_kind::activation: return neuron_importance(activation{activation_metric::mean_abs}, f);
    case criterion_kind::activation_l2: return neuron_importance(activation{activation_metric::l2}, f);
    case criterion_kind::apoz: return neuron_importance(activation{activation_metric::apoz}, f);
    default: break;
  }
  pare::detail::fail<argument_error>("pare::prune::prune_model: criterion ", to_string(spec.criterion), " does not score FFN neurons");
}

/// The model engine with scoring functions (see prune_model).
template <class BlockScores, class NeuronScores, class HeadScores>
model_prune_result prune_model_with(block_model& m, const prune_spec& spec, BlockScores&& blocks, NeuronScores&& neurons,
                                    HeadScores&& heads) {
  const char* where = "pare::prune::prune_model";
  spec.validate(where);
  model_prune_result r;
  const std::size_t L = m.num_blocks();
  if (spec.granularity == granularity_kind::depth_blocks) {
    (void)select_blocks(std::vector<double>(L, 0.0), spec.count, spec.keep_first, spec.keep_last);  // validates n
    if (spec.schedule == schedule_kind::one_shot) {
      r.removed_blocks = select_blocks(blocks(m), spec.count, spec.keep_first, spec.keep_last);
      m.remove_blocks(r.removed_blocks);
      return r;
    }
    std::vector<std::size_t> original(L);
    for (std::size_t i = 0; i < L; ++i) original[i] = i;
    for (std::size_t step = 0; step < spec.count; ++step) {
      const std::size_t i = select_blocks(blocks(m), 1, spec.keep_first, spec.keep_last)[0];
      m.remove_blocks({i});
      r.removed_blocks.push_back(original[i]);
      original.erase(original.begin() + static_cast<std::ptrdiff_t>(i));
    }
    return r;
  }
  if (L == 0) pare::detail::fail<argument_error>(where, ": expected a model with at least one block, got none");
  const bool ffn = spec.granularity == granularity_kind::ffn_neurons;
  if (!ffn && spec.granularity != granularity_kind::kv_heads)
    pare::detail::fail<argument_error>(where, ": argument 'spec': ", to_string(spec.granularity),
                                       " prunes a matrix (prune_matrix), not a model");
  auto units_of = [&](std::size_t b) { return ffn ? m.ffn(b).hidden_size() : m.attention(b).n_kv_heads; };
  const std::size_t units = units_of(0);
  for (std::size_t b = 1; b < L; ++b)
    if (units_of(b) != units)
      pare::detail::fail<argument_error>(where, ": expected the same ", ffn ? "feed-forward width" : "KV head count",
                                         " in every block, got ", units, " in block 0 and ", units_of(b), " in block ", b);
  const std::size_t target =
      std::max<std::size_t>(1, static_cast<std::size_t>(std::lround((1.0 - spec.sparsity) * double(units))));
  const std::size_t steps = spec.schedule == schedule_kind::iterative ? std::max<std::size_t>(1, spec.steps) : 1;
  for (std::size_t k = 1; k <= steps; ++k) {
    const std::size_t keep_n = units - (units - target) * k / steps;
    if (k > 1 && ffn) m.refresh_statistics();
    // Score every block first (validates everything), then shrink.
    std::vector<std::vector<std::size_t>> keeps;
    for (std::size_t b = 0; b < L; ++b)
      keeps.push_back(keep_highest(ffn ? neurons(m.ffn(b)) : heads(m.attention(b)), keep_n));
    for (std::size_t b = 0; b < L; ++b) {
      if (ffn) m.keep_ffn_neurons(b, keeps[b]);
      else m.keep_kv_heads(b, keeps[b]);
    }
  }
  (ffn ? r.ffn_width : r.kv_heads) = target;
  return r;
}
}  // namespace detail

/// Prunes the model's blocks, FFN neurons or KV heads as spec says (see the header comment).
inline model_prune_result prune_model(block_model& m, const prune_spec& spec) {
  return detail::prune_model_with(
      m, spec, [&](block_model& x) { return detail::block_scores(spec, x); },
      [&](const ffn_view& f) { return detail::ffn_scores(spec, f); },
      [&](const attention_view& a) { return head_importance(magnitude{}, a); });
}

}  // namespace prune
PARE_NAMESPACE_END
