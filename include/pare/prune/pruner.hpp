// pruner<Criterion, Granularity, Schedule>: the compile-time composition of a pruning method, the twin of prune_spec.
#pragma once

// One policy per decision, as quantizer<...> does for quantization:
//
//   pare::prune::pruner<pare::prune::wanda, pare::prune::n_m<2, 4>> p(pare::prune::wanda(stats));
//   pare::prune::mask m = p(w);                      // w: [out_features, in_features]
//   pare::prune::pruner<pare::prune::magnitude, pare::prune::unstructured<>, pare::prune::iterative> q(0.5);
//   pare::prune::pruner<pare::prune::taylor_plus, pare::prune::depth_blocks> d(2);   // 2 blocks
//   d(model);                                        // a pare::prune::block_model
//
// Criterion: magnitude, wanda(stats), taylor(grad) score weights (matrix granularities);
// ppl_drop, taylor, taylor_plus, magnitude score blocks; magnitude, activation{metric}
// score FFN neurons; magnitude scores KV heads (pare/prune/model_criteria.hpp). Granularity:
// pare/prune/granularity.hpp. Schedule: one_shot, iterative{steps}, gradual{cubic}
// (pare/prune/schedule.hpp). The amount is a fraction for every granularity but n_m
// (N/M fixes it) and depth_blocks (a block count). Runtime knobs (statistics, gradients,
// steps, kept ends) live in the objects. spec() is the equivalent runtime prune_spec;
// prune_matrix / prune_model with it give exactly the same result (both call one engine).
// A slot given the wrong kind of type, or a combination without an implementation, is a
// static_assert naming the slot.

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "pare/prune/block_model.hpp"
#include "pare/prune/granularity.hpp"
#include "pare/prune/magnitude.hpp"
#include "pare/prune/mask.hpp"
#include "pare/prune/model_criteria.hpp"
#include "pare/prune/prune_spec.hpp"
#include "pare/prune/schedule.hpp"
#include "pare/prune/taylor.hpp"
#include "pare/prune/wanda.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

template <class T>
inline constexpr bool is_prune_criterion_v =
    std::is_same_v<T, magnitude> || std::is_same_v<T, wanda> || std::is_same_v<T, taylor> ||
    std::is_same_v<T, taylor_plus> || std::is_same_v<T, ppl_drop> || std::is_same_v<T, activation>;

namespace detail {
template <class G>
inline constexpr bool is_matrix_granularity_v = is_matrix_granularity(G::kind);

/// Whether criterion C has an implementation at granularity G.
template <class C, class G>
constexpr bool supports() {
  constexpr granularity_kind k = G::kind;
  if constexpr (is_matrix_granularity(k))
    return std::is_same_v<C, magnitude> || std::is_same_v<C, wanda> || std::is_same_v<C, taylor>;
  else if constexpr (k == granularity_kind::depth_blocks)
    return std::is_same_v<C, ppl_drop> || std::is_same_v<C, taylor> || std::is_same_v<C, taylor_plus> ||
           std::is_same_v<C, magnitude>;
  else if constexpr (k == granularity_kind::ffn_neurons)
    return std::is_same_v<C, magnitude> || std::is_same_v<C, activation>;
  else
    return std::is_same_v<C, magnitude>;
}

template <class C>
constexpr criterion_kind criterion_kind_of() {
  if constexpr (std::is_same_v<C, magnitude>) return criterion_kind::magnitude;
  else if constexpr (std::is_same_v<C, wanda>) return criterion_kind::wanda;
  else if constexpr (std::is_same_v<C, taylor>) return criterion_kind::taylor;
  else if constexpr (std::is_same_v<C, taylor_plus>) return criterion_kind::taylor_plus;
  else if constexpr (std::is_same_v<C, ppl_drop>) return criterion_kind::ppl_drop;
  else return criterion_kind::activation;
}
}  // namespace detail

template <class Criterion, class Granularity = unstructured<>, class Schedule = one_shot>
class pruner {
  static_assert(is_prune_criterion_v<Criterion>,
                "pare::prune::pruner: template argument 'Criterion' must be magnitude, wanda, taylor, taylor_plus, "
                "ppl_drop or activation");
  static_assert(is_granularity_v<Granularity>,
                "pare::prune::pruner: template argument 'Granularity' must be unstructured<Scope>, n_m<N, M>, "
                "rows<Norm>, columns<Norm>, depth_blocks, ffn_neurons or kv_heads");
  static_assert(is_schedule_v<Schedule>,
                "pare::prune::pruner: template argument 'Schedule' must be one_shot, iterative or gradual");
  static_assert(detail::supports<Criterion, Granularity>(),
                "pare::prune::pruner: no implementation for this Criterion at this Granularity (matrix granularities "
                "take magnitude, wanda or taylor; depth_blocks ppl_drop, taylor, taylor_plus or magnitude; ffn_neurons "
                "magnitude or activation; kv_heads magnitude)");
  static_assert(!(Granularity::kind == granularity_kind::n_m && !std::is_same_v<Schedule, one_shot>),
                "pare::prune::pruner: template argument 'Schedule' must be one_shot for n_m (each group keeps exactly N)");
  static_assert(!(std::is_same_v<Schedule, gradual> && Granularity::kind != granularity_kind::unstructured),
                "pare::prune::pruner: template argument 'Schedule' gradual needs Granularity unstructured<Scope>");

  static constexpr granularity_kind kind = Granularity::kind;
  static constexpr bool matrix = is_matrix_granularity(kind);

 public:
  using criterion_type = Criterion;
  using granularity_type = Granularity;
  using schedule_type = Schedule;

  /// Fraction `sparsity` of the units pruned (granularities other than n_m and depth_blocks).
  template <class G = Granularity, std::enable_if_t<G::kind != granularity_kind::n_m && G::kind != granularity_kind::depth_blocks, int> = 0>
  explicit pruner(double sparsity, Criterion c = Criterion{}, Schedule s = Schedule{})
      : criterion_(std::move(c)), schedule_(std::move(s)), sparsity_(sparsity) {
    (void)spec();  // validates
  }
  /// n_m: the density is N/M.
  template <class G = Granularity, std::enable_if_t<G::kind == granularity_kind::n_m, int> = 0>
  explicit pruner(Criterion c = Criterion{}, Schedule s = Schedule{}) : criterion_(std::move(c)), schedule_(std::move(s)) {}
  /// depth_blocks: `blocks` whole blocks removed.
  template <class G = Granularity, std::enable_if_t<G::kind == granularity_kind::depth_blocks, int> = 0>
  explicit pruner(std::size_t blocks, Criterion c = Criterion{}, Schedule s = Schedule{})
      : criterion_(std::move(c)), schedule_(std::move(s)), count_(blocks) {
    (void)spec();
  }

  const Criterion& criterion() const noexcept { return criterion_; }
  const Schedule& schedule() const noexcept { return schedule_; }

  /// The equivalent runtime spec.
  prune_spec spec() const {
    prune_spec p;
    p.granularity = kind;
    p.criterion = detail::criterion_kind_of<Criterion>();
    if constexpr (std::is_same_v<Criterion, activation>) {
      if (criterion_.metric == activation_metric::l2) p.criterion = criterion_kind::activation_l2;
      if (criterion_.metric == activation_metric::apoz) p.criterion = criterion_kind::apoz;
    }
    if constexpr (kind == granularity_kind::unstructured) p.group = Granularity::group;
    if constexpr (kind == granularity_kind::n_m) {
      p.n = Granularity::n;
      p.m = Granularity::m;
    }
    if constexpr (kind == granularity_kind::rows || kind == granularity_kind::columns) p.norm = Granularity::norm;
    p.sparsity = sparsity_;
    if constexpr (kind == granularity_kind::depth_blocks) {
      p.count = count_;
      const auto ends = kept_ends(criterion_);
      p.keep_first = ends.first;
      p.keep_last = ends.second;
    }
    p.schedule = Schedule::kind;
    if constexpr (std::is_same_v<Schedule, iterative>)
      p.steps = kind == granularity_kind::depth_blocks ? count_ : schedule_.steps;
    p.validate("pare::prune::pruner");
    return p;
  }

  /// The mask for w [out, in] (matrix granularities).
  template <bool M = matrix, std::enable_if_t<M, int> = 0>
  mask operator()(const matrix_view<const float>& w) const {
    return detail::prune_matrix_with(spec(), w, [&](const matrix_view<const float>& x) { return criterion_(x); });
  }

  /// Zeroes the weights of w that the mask prunes and returns the mask (matrix granularities).
  template <bool M = matrix, std::enable_if_t<M, int> = 0>
  mask apply(const matrix_view<float>& w) const {
    mask m = (*this)(matrix_view<const float>(w));
    prune::apply(m, w);
    return m;
  }

  /// Gradual schedule at training step t: `current` extended to the schedule's sparsity
  /// when t is a pruning step (scores of the current w), else `current` unchanged.
  template <class S = Schedule, std::enable_if_t<std::is_same_v<S, gradual>, int> = 0>
  mask update(std::size_t t, const matrix_view<const float>& w, const mask& current) const {
    if (!schedule_.schedule.is_pruning_step(t)) return current;
    const score_matrix s = criterion_(w);
    return extend(current, s.view(), schedule_.schedule.sparsity_at(t), Granularity::group);
  }

  /// Prunes the model (model granularities).
  template <bool M = matrix, std::enable_if_t<!M, int> = 0>
  model_prune_result operator()(block_model& m) const {
    const prune_spec p = spec();
    auto blocks = [&](block_model& x) -> std::vector<double> {
      if constexpr (kind == granularity_kind::depth_blocks) return block_importance(criterion_, x);
      else return (void)x, std::vector<double>{};
    };
    auto neurons = [&](const ffn_view& f) -> std::vector<double> {
      if constexpr (kind == granularity_kind::ffn_neurons) return neuron_importance(criterion_, f);
      else return (void)f, std::vector<double>{};
    };
    auto heads = [&](const attention_view& a) -> std::vector<double> {
      if constexpr (kind == granularity_kind::kv_heads) return head_importance(criterion_, a);
      else return (void)a, std::vector<double>{};
    };
    return detail::prune_model_with(m, p, blocks, neurons, heads);
  }

 private:
  Criterion criterion_;
  Schedule schedule_;
  double sparsity_ = 0.0;
  std::size_t count_ = 0;
};

}  // namespace prune
PARE_NAMESPACE_END
