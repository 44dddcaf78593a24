// Pruning granularity policies: what one pruning decision removes — weights (unstructured, N:M), rows, columns, FFN neurons, attention heads, whole blocks.
#pragma once

// Matrix granularities act on one weight matrix [out_features, in_features] and give a
// prune::mask of its shape:
//   unstructured<scope::per_row>  ⌊s·cols⌋ weights of every row (Wanda's comparison group)
//   unstructured<scope::global>   ⌊s·rows·cols⌋ weights of the whole matrix
//   n_m<N, M>                     N of every M consecutive weights along the inputs kept
//   rows<Norm>, columns<Norm>     whole output rows / input columns, each unit scored by
//                                 the l1 or l2 norm of its per-weight scores
// Model granularities act on a prune::block_model (pare/prune/block_model.hpp):
//   depth_blocks                  whole transformer blocks
//   ffn_neurons                   hidden neurons of every feed-forward block (rows of gate
//                                 and up, columns of down), the same count in every block
//   kv_heads                      key/value heads with their group of query heads (GQA)
// granularity_kind is the runtime form (prune_spec, pare/prune/prune_spec.hpp).

#include <cstddef>
#include <type_traits>

#include "pare/prune/mask.hpp"
#include "pare/prune/scores.hpp"

PARE_NAMESPACE_BEGIN
namespace prune {

/// The runtime form of a granularity policy.
enum class granularity_kind { unstructured, n_m, rows, columns, depth_blocks, ffn_neurons, kv_heads };

inline const char* to_string(granularity_kind g) noexcept {
  switch (g) {
    case granularity_kind::unstructured: return "unstructured";
    case granularity_kind::n_m: return "nm";
    case granularity_kind::rows: return "rows";
    case granularity_kind::columns: return "columns";
    case granularity_kind::depth_blocks: return "depth";
    case granularity_kind::ffn_neurons: return "ffn";
    case granularity_kind::kv_heads: return "heads";
  }
  return "?";
}

/// Whether a granularity prunes inside one matrix (a mask) or across a model.
constexpr bool is_matrix_granularity(granularity_kind g) noexcept {
  return g == granularity_kind::unstructured || g == granularity_kind::n_m || g == granularity_kind::rows ||
         g == granularity_kind::columns;
}

/// Individual weights; S chooses the comparison group.
template <scope S = scope::per_row>
struct unstructured {
  static constexpr granularity_kind kind = granularity_kind::unstructured;
  static constexpr scope group = S;
};

/// N of every M consecutive weights along the input dimension are kept (density N/M).
template <std::size_t N, std::size_t M>
struct n_m {
  static_assert(N >= 1 && N <= M, "pare::prune::n_m<N, M>: template arguments must satisfy 1 <= N <= M");
  static constexpr granularity_kind kind = granularity_kind::n_m;
  static constexpr std::size_t n = N, m = M;
};

/// Whole output rows (neurons), scored by the Norm of their weights' scores.
template <unit_norm Norm = unit_norm::l2>
struct rows {
  static constexpr granularity_kind kind = granularity_kind::rows;
  static constexpr unit_norm norm = Norm;
};

/// Whole input columns (channels), scored by the Norm of their weights' scores.
template <unit_norm Norm = unit_norm::l2>
struct columns {
  static constexpr granularity_kind kind = granularity_kind::columns;
  static constexpr unit_norm norm = Norm;
};

/// Whole transformer blocks of a model.
struct depth_blocks {
  static constexpr granularity_kind kind = granularity_kind::depth_blocks;
};

/// Hidden neurons of every feed-forward block of a model.
struct ffn_neurons {
  static constexpr granularity_kind kind = granularity_kind::ffn_neurons;
};

/// Key/value heads (with their query heads) of every attention block of a model.
struct kv_heads {
  static constexpr granularity_kind kind = granularity_kind::kv_heads;
};

template <class T>
struct is_granularity : std::false_type {};
template <scope S>
struct is_granularity<unstructured<S>> : std::true_type {};
template <std::size_t N, std::size_t M>
struct is_granularity<n_m<N, M>> : std::true_type {};
template <unit_norm Norm>
struct is_granularity<rows<Norm>> : std::true_type {};
template <unit_norm Norm>
struct is_granularity<columns<Norm>> : std::true_type {};
template <>
struct is_granularity<depth_blocks> : std::true_type {};
template <>
struct is_granularity<ffn_neurons> : std::true_type {};
template <>
struct is_granularity<kv_heads> : std::true_type {};
template <class T>
inline constexpr bool is_granularity_v = is_granularity<T>::value;

}  // namespace prune
PARE_NAMESPACE_END
