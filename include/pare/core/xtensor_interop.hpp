// Zero-copy pare views of xtensor containers, adaptors and strided views (pare::view(expr)).
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {
template <class E, class = void>
struct has_data_offset : std::false_type {};
template <class E>
struct has_data_offset<E, std::void_t<decltype(std::declval<E&>().data_offset())>> : std::true_type {};

template <class E, class = void>
struct is_xtensor_like : std::false_type {};
template <class E>
struct is_xtensor_like<E, std::void_t<decltype(std::declval<E&>().data()), decltype(std::declval<E&>().shape()),
                                      decltype(std::declval<E&>().strides())>> : std::true_type {};
}  // namespace detail

/// A tensor_view of any xtensor expression with a data interface (xarray, xtensor,
/// xt::adapt adaptors, strided xt::view results). The view shares the expression's
/// memory: writing through the view writes the container. The expression must outlive
/// the view. xtensor's strides are in elements, like pare's.
template <class E, class = std::enable_if_t<detail::is_xtensor_like<std::remove_reference_t<E>>::value>>
auto view(E& expr) {
  using ptr_t = decltype(expr.data());
  using T = std::remove_pointer_t<ptr_t>;
  auto* base = expr.data();
  if constexpr (detail::has_data_offset<E>::value) base += expr.data_offset();
  const auto& sh = expr.shape();
  const auto& st = expr.strides();
  if (sh.size() > max_rank)
    detail::fail<shape_error>("pare::view: rank ", sh.size(), " exceeds max_rank ", max_rank);
  shape_t shape(sh.begin(), sh.end());
  typename tensor_view<T>::strides_t strides{};
  for (std::size_t i = 0; i < sh.size(); ++i) strides[i] = static_cast<std::ptrdiff_t>(st[i]);
  return tensor_view<T>(base, shape, strides);
}

/// A matrix_view of a rank-2 (or rank-1, as one row) xtensor expression.
template <class E, class = std::enable_if_t<detail::is_xtensor_like<std::remove_reference_t<E>>::value>>
auto matrix_of(E& expr) {
  return view(expr).as_matrix();
}

PARE_NAMESPACE_END
