// 2:4 sparse storage from pruning masks: pack_sparse24(w, mask) and kept(p), the mask of a packed_sparse24's kept positions.
#pragma once

// The storage and its matmul are kernels (pare/kernels/sparse/sparse24.hpp); this header
// joins them with prune::mask. pack_sparse24(w, m) needs exactly 2 kept entries in every
// group of 4 columns (argument_error naming 'mask' otherwise); kept(p) is exactly 2:4.

#include <cstddef>

#include "pare/core/tensor_view.hpp"
#include "pare/kernels/sparse/sparse24.hpp"
#include "pare/prune/mask.hpp"

PARE_NAMESPACE_BEGIN

/// Packs the entries of w that an exactly-2:4 mask keeps.
inline packed_sparse24 pack_sparse24(const matrix_view<const float>& w, const prune::mask& m) {
  check_same_shape("pare::pack_sparse24: arguments 'w' and 'mask'", w.shape(), m.shape());
  return pack_sparse24(w, m.view());
}

namespace prune {
/// The kept positions of p as a mask (exactly 2:4).
inline mask kept(const packed_sparse24& p) {
  mask m(p.n, p.k, false);
  for (std::size_t i = 0; i < p.n; ++i)
    for (std::size_t t = 0; t < p.k / 2; ++t) m.set(i, p.column(i, t), true);
  return m;
}
}  // namespace prune

PARE_NAMESPACE_END
