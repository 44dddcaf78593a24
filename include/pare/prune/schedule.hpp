// Pruning schedules: the schedule policies (one_shot, iterative, gradual), mask extension, iterative prune-and-rescore, the cubic schedule (Zhu & Gupta), and the L1 proximal soft-threshold step.
#pragma once

// Schedule policies (the third slot of pruner<Criterion, Granularity, Schedule>):
//   one_shot                               score once, prune to the target at once
//   iterative{steps}                       reach the target in `steps` equal increments,
//                                          re-scoring the (partly pruned) weights or model
//                                          before each
//   gradual{cubic_schedule}                during training: at each pruning step t, extend
//                                          the mask to cubic_schedule::sparsity_at(t)
// Building blocks:
// extend(mask, scores, s, scope, max_new)  keeps what `mask` pruned pruned and prunes the
//                                          least important kept entries until ⌊s·n⌋ are
//                                          pruned (per row or in all), at most max_new
//                                          more (per row for scope::per_row)
// iterative_prune(start, s, k, scope, f)   repeat { scores = f(mask); prune k more } until
//                                          the target count: f may apply the mask, fine-
//                                          tune, recompute gradients, ... and re-score
// cubic_schedule                           s_t = s_f + (s_i − s_f)·(1 − (t − t0)/(n·Δt))³
//                                          for t0 <= t <= t0 + n·Δt (Zhu & Gupta 2017),
//                                          s_i before, s_f after; pruning steps are
//                                          t0, t0 + Δt, ..., t0 + n·Δt. Use it as
//                                          m = extend(m, scores, sched.sparsity_at(t), ...)
//                                          at every pruning step.
// soft_threshold(w, λ, η)                  the proximal step of an L1 penalty λ·Σ|w| after
//                                          a gradient step of rate η:
//                                          w ← sign(w)·max(|w| − λ·η, 0)
// Counts and ranking are those of pare/prune/scores.hpp. Pruned entries stay pruned.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/prune/mask.hpp"
#include "pare/prune/scores.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// The runtime form of a schedule policy.
enum class schedule_kind { one_shot, iterative, gradual };

inline const char* to_string(schedule_kind k) noexcept {
  return k == schedule_kind::one_shot ? "one_shot" : k == schedule_kind::iterative ? "iterative" : "gradual";
}

/// `current` with more entries pruned: the least important of its kept entries (by
/// `scores`) until ⌊s·n⌋ are pruned per row (scope::per_row, n = cols) or in all
/// (scope::global, n = rows·cols), pruning at most `max_new` more (per row for
/// per_row). A mask already at or past the target is returned unchanged. shape_error
/// when the shapes differ; argument_error for a sparsity outside [0, 1); value_error
/// for NaN scores.
inline mask extend(const mask& current, const matrix_view<const float>& scores, double sparsity, scope sc,
                   std::size_t max_new = std::numeric_limits<std::size_t>::max()) {
  const char* where = "pare::prune::extend";
  detail::check_sparsity(where, sparsity);
  check_same_shape("pare::prune::extend: arguments 'current' and 'scores'", current.shape(), scores.shape());
  detail::check_no_nan(where, "scores", scores);
  const std::size_t rows = current.rows(), cols = current.cols();
  mask out = current;
  std::vector<float> vals, scratch;
  std::vector<std::size_t> pos;
  std::vector<std::uint8_t> flags;
  // Prunes up to k of the kept entries among positions [lo, hi) of the flat mask.
  auto prune_among = [&](std::size_t lo, std::size_t hi, std::size_t k) {
    vals.clear();
    pos.clear();
    for (std::size_t p = lo; p < hi; ++p)
      if (out.data()[p]) {
        vals.push_back(scores(p / cols, p % cols));
        pos.push_back(p);
      }
    flags.assign(vals.size(), 1);
    detail::mark_lowest(vals.data(), vals.size(), k, flags.data(), scratch);
    for (std::size_t t = 0; t < pos.size(); ++t)
      if (!flags[t]) out.data()[pos[t]] = 0;
  };
  if (sc == scope::per_row) {
    const std::size_t target = detail::floor_count(sparsity, cols);
    for (std::size_t i = 0; i < rows; ++i) {
      const std::size_t pruned = cols - current.row_count(i);
      if (pruned < target) prune_among(i * cols, (i + 1) * cols, std::min(max_new, target - pruned));
    }
  } else {
    const std::size_t target = detail::floor_count(sparsity, rows * cols), pruned = current.pruned();
    if (pruned < target) prune_among(0, rows * cols, std::min(max_new, target - pruned));
  }
  return out;
}

/// Iterative pruning from `start` to `target_sparsity`: every step calls
/// rescore(const mask& current) for fresh scores (a score_matrix or a matrix_view of
/// the mask's shape) and prunes at most `per_step` more entries (per row for
/// scope::per_row) with extend(). Returns the final mask; `steps`, if given, receives the
/// number of rescore calls. argument_error naming 'target_sparsity' / 'per_step' (0);
/// shape_error / value_error naming 'rescore' for scores of the wrong shape or with NaN.
/// `start` is not modified (also when rescore throws).
template <class Rescore>
mask iterative_prune(const mask& start, double target_sparsity, std::size_t per_step, scope sc, Rescore&& rescore,
                     std::size_t* steps = nullptr) {
  const char* where = "pare::prune::iterative_prune";
  if (!(target_sparsity >= 0.0 && target_sparsity < 1.0))
    pare::detail::fail<argument_error>(where, ": argument 'target_sparsity': expected a value in [0, 1), got ",
                                       target_sparsity);
  if (per_step == 0) pare::detail::fail<argument_error>(where, ": argument 'per_step': expected at least 1, got 0");
  const std::size_t rows = start.rows(), cols = start.cols();
  auto done = [&](const mask& m) {
    if (sc == scope::global) return m.pruned() >= detail::floor_count(target_sparsity, rows * cols);
    const std::size_t target = detail::floor_count(target_sparsity, cols);
    for (std::size_t i = 0; i < rows; ++i)
      if (cols - m.row_count(i) < target) return false;
    return true;
  };
  mask cur = start;
  std::size_t calls = 0;
  while (!done(cur)) {
    const auto scores_obj = rescore(static_cast<const mask&>(cur));
    ++calls;
    const matrix_view<const float> s = scores_obj;
    if (s.shape() != cur.shape())
      pare::detail::fail<shape_error>(where, ": argument 'rescore': expected scores of shape ", cur.shape(), ", got ",
                                      s.shape());
    detail::check_no_nan(where, "rescore", s);
    cur = extend(cur, s, target_sparsity, sc, per_step);
  }
  if (steps) *steps = calls;
  return cur;
}

/// Zhu & Gupta's gradual sparsity schedule (see the essay above).
struct cubic_schedule {
  double initial_sparsity = 0.0;  ///< s_i, in [0, 1)
  double final_sparsity = 0.5;    ///< s_f, in [s_i, 1)
  std::size_t start_step = 0;     ///< t0
  std::size_t num_steps = 1;      ///< n pruning steps after t0 (>= 1)
  std::size_t interval = 1;       ///< Δt training steps between pruning steps (>= 1)

  /// argument_error naming the field unless the schedule is well formed.
  void validate() const {
    const char* where = "pare::prune::cubic_schedule";
    if (!(initial_sparsity >= 0.0 && initial_sparsity < 1.0))
      pare::detail::fail<argument_error>(where, ": argument 'initial_sparsity': expected a value in [0, 1), got ",
                                         initial_sparsity);
    if (!(final_sparsity >= initial_sparsity && final_sparsity < 1.0))
      pare::detail::fail<argument_error>(where, ": argument 'final_sparsity': expected a value in [initial_sparsity = ",
                                         initial_sparsity, ", 1), got ", final_sparsity);
    if (num_steps == 0) pare::detail::fail<argument_error>(where, ": argument 'num_steps': expected at least 1, got 0");
    if (interval == 0) pare::detail::fail<argument_error>(where, ": argument 'interval': expected at least 1, got 0");
  }

  /// t0 + n·Δt: the last pruning step.
  std::size_t end_step() const noexcept { return start_step + num_steps * interval; }

  /// s_t at training step t (s_i up to t0, s_f from t0 + n·Δt on; non-decreasing in t).
  double sparsity_at(std::size_t t) const {
    validate();
    if (t <= start_step) return initial_sparsity;
    if (t >= end_step()) return final_sparsity;
    const double frac = double(t - start_step) / (double(num_steps) * double(interval));
    const double r = 1.0 - frac;
    return final_sparsity + (initial_sparsity - final_sparsity) * r * r * r;
  }

  /// True at t0, t0 + Δt, ..., t0 + n·Δt.
  bool is_pruning_step(std::size_t t) const {
    validate();
    return t >= start_step && t <= end_step() && (t - start_step) % interval == 0;
  }
};

/// Schedule policy: score once, prune to the target at once.
struct one_shot {
  static constexpr schedule_kind kind = schedule_kind::one_shot;
};

/// Schedule policy: `steps` equal increments, re-scoring before each.
struct iterative {
  static constexpr schedule_kind kind = schedule_kind::iterative;
  std::size_t steps = 2;
};

/// Schedule policy: the mask grows during training along a cubic schedule.
struct gradual {
  static constexpr schedule_kind kind = schedule_kind::gradual;
  cubic_schedule schedule{};
};

template <class T>
struct is_schedule : std::bool_constant<std::is_same_v<T, one_shot> || std::is_same_v<T, iterative> ||
                                         std::is_same_v<T, gradual>> {};
template <class T>
inline constexpr bool is_schedule_v = is_schedule<T>::value;

/// L1 proximal step in place: w ← sign(w)·max(|w| − λ·η, 0), computed in double and
/// rounded to float once. Returns how many weights are zero afterwards. argument_error
/// naming 'lambda' or 'lr' unless finite and >= 0; value_error naming 'w' for a
/// non-finite weight (nothing is changed then).
inline std::size_t soft_threshold(const matrix_view<float>& w, double lambda, double lr) {
  const char* where = "pare::prune::soft_threshold";
  if (!(lambda >= 0.0) || !std::isfinite(lambda))
    pare::detail::fail<argument_error>(where, ": argument 'lambda': expected a finite value >= 0, got ", lambda);
  if (!(lr >= 0.0) || !std::isfinite(lr))
    pare::detail::fail<argument_error>(where, ": argument 'lr': expected a finite value >= 0, got ", lr);
  detail::check_finite(where, "w", matrix_view<const float>(w));
  const double tau = lambda * lr;
  std::size_t zeros = 0;
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j) {
      const double v = w(i, j), a = std::fabs(v) - tau;
      const float r = a > 0.0 ? static_cast<float>(std::copysign(a, v)) : 0.0f;
      w(i, j) = r;
      zeros += r == 0.0f;
    }
  return zeros;
}

}  // namespace prune
PARE_NAMESPACE_END
