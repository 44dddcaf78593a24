// decomposer<Method, RankPolicy>: the compile-time composition of a low-rank method, the twin of lowrank_spec.
#pragma once

// One policy per decision, as quantizer<...> and prune::pruner<...> do:
//
//   pare::decomposer<pare::lowrank::truncated_svd, pare::lowrank::energy> d({}, {0.95});
//   pare::layer_decomposition r = d(w);              // w: [out_features, in_features]
//   pare::lowrank_factors f = r.decomposition.factors(r.rank);   // unless r.dense
//   pare::decomposer<pare::lowrank::whitened, pare::lowrank::budget> g({}, {0.5});
//   pare::decomposition_plan p = g({{"a", wa, &stats_a}, {"b", wb, &stats_b}});
//
// Method (the matrix that is factored, W·T):
//   truncated_svd       T = I, exact SVD
//   randomized_svd      T = I, randomized SVD of only the needed rank (options in the object)
//   asvd{alpha}         T = diag(mean|x|^α) (ASVD; needs the inputs' statistics)
//   whitened{ridge}     T = chol(XᵀX/n + ridge·I) (SVD-LLM; needs XᵀX)
// RankPolicy: fixed_rank{r}, energy{fraction}, ratio{fraction}, budget{fraction} (budget
// spreads one parameter budget over several matrices: decompose a list). Knobs live in the
// objects (C++17 has no floating-point template arguments). spec() is the runtime
// lowrank_spec; plan_decomposition with it gives exactly the same result (one engine).
// Wrong slots and impossible combinations are static_asserts naming the slot.

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "pare/lowrank/decompose.hpp"
#include "pare/lowrank/lowrank_spec.hpp"
#include "pare/lowrank/randomized_svd.hpp"

PARE_NAMESPACE_BEGIN
namespace lowrank {

/// Method: the exact SVD of W.
struct truncated_svd {};
/// Method: a randomized SVD of W of only the rank needed.
struct randomized_svd {
  randomized_svd_options options{};
};
/// Method: ASVD, W·diag(mean|x|^α).
struct asvd {
  double alpha = 0.5;
};
/// Method: SVD-LLM whitening, W·chol(XᵀX/n + ridge·mean(diag)·I).
struct whitened {
  double ridge = 0.0;
};

/// Rank policy: the same rank for every matrix.
struct fixed_rank {
  std::size_t rank = 1;
};
/// Rank policy: the smallest rank keeping this fraction of Σσ².
struct energy {
  double fraction = 0.9;
};
/// Rank policy: the largest rank with r·(out + in) ≤ fraction·out·in.
struct ratio {
  double fraction = 0.5;
};
/// Rank policy: Σ parameters ≤ fraction·Σ out·in over all matrices decomposed together.
struct budget {
  double fraction = 0.5;
};

template <class T>
inline constexpr bool is_method_v = std::is_same_v<T, truncated_svd> || std::is_same_v<T, randomized_svd> ||
                                    std::is_same_v<T, asvd> || std::is_same_v<T, whitened>;
template <class T>
inline constexpr bool is_rank_policy_v =
    std::is_same_v<T, fixed_rank> || std::is_same_v<T, energy> || std::is_same_v<T, ratio> || std::is_same_v<T, budget>;

}  // namespace lowrank

template <class Method, class RankPolicy>
class decomposer {
  static_assert(lowrank::is_method_v<Method>,
                "pare::decomposer: template argument 'Method' must be lowrank::truncated_svd, lowrank::randomized_svd, "
                "lowrank::asvd or lowrank::whitened");
  static_assert(lowrank::is_rank_policy_v<RankPolicy>,
                "pare::decomposer: template argument 'RankPolicy' must be lowrank::fixed_rank, lowrank::energy, "
                "lowrank::ratio or lowrank::budget");
  static_assert(!(std::is_same_v<Method, lowrank::randomized_svd> &&
                  (std::is_same_v<RankPolicy, lowrank::energy> || std::is_same_v<RankPolicy, lowrank::budget>)),
                "pare::decomposer: template argument 'RankPolicy' must be fixed_rank or ratio with randomized_svd "
                "(energy and budget need the whole spectrum)");

 public:
  using method_type = Method;
  using rank_policy_type = RankPolicy;

  explicit decomposer(Method method = Method{}, RankPolicy policy = RankPolicy{}) : method_(method), policy_(policy) {
    (void)lowrank_spec::parse(spec().str());  // validates the knobs as the string form would
  }

  const Method& method() const noexcept { return method_; }
  const RankPolicy& policy() const noexcept { return policy_; }

  /// The equivalent runtime spec.
  lowrank_spec spec() const {
    lowrank_spec s;
    if constexpr (std::is_same_v<RankPolicy, lowrank::fixed_rank>) {
      s.policy = lowrank_spec::policy_kind::rank;
      s.rank = policy_.rank;
    } else {
      s.policy = std::is_same_v<RankPolicy, lowrank::energy>  ? lowrank_spec::policy_kind::energy
                 : std::is_same_v<RankPolicy, lowrank::ratio> ? lowrank_spec::policy_kind::ratio
                                                              : lowrank_spec::policy_kind::budget;
      s.value = policy_.fraction;
    }
    if constexpr (std::is_same_v<Method, lowrank::randomized_svd>) {
      s.randomized = true;
      s.options.rsvd = method_.options;
    } else if constexpr (std::is_same_v<Method, lowrank::asvd>) {
      s.method = lowrank_method::asvd;
      s.options.asvd_alpha = method_.alpha;
    } else if constexpr (std::is_same_v<Method, lowrank::whitened>) {
      s.method = lowrank_method::whiten;
      s.options.ridge = method_.ridge;
    }
    return s;
  }

  /// Decomposes one matrix w [out, in] (stats: of w's inputs, for asvd / whitened).
  layer_decomposition operator()(const matrix_view<const float>& w, const linear_input_stats* stats = nullptr) const {
    static_assert(!std::is_same_v<RankPolicy, lowrank::budget>,
                  "pare::decomposer: RankPolicy budget spreads one budget over several matrices: decompose a list");
    decomposition_plan p = plan_decomposition({{"w", w, stats}}, spec(), "pare::decomposer");
    return std::move(p.layers[0]);
  }

  /// Decomposes several matrices together (budget allocates over all of them).
  decomposition_plan operator()(const std::vector<decompose_input>& inputs) const {
    return plan_decomposition(inputs, spec(), "pare::decomposer");
  }

 private:
  Method method_;
  RankPolicy policy_;
};

PARE_NAMESPACE_END
