// Granularity policies: per_tensor, per_channel<Axis>, per_group<G>, and their runtime form.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

/// Which values share one scale and zero point.
enum class granularity_kind { per_tensor, per_channel, per_group };

/// Runtime granularity. For a weight matrix [out_features, in_features]:
///   per_tensor       one (scale, zero point) for the whole matrix;
///   per_channel, 0   one per row (output channel) — the usual weight granularity;
///   per_channel, 1   one per column (input channel);
///   per_group, G     one per G consecutive elements of a row (G must divide the row).
struct granularity {
  granularity_kind kind = granularity_kind::per_channel;
  int axis = 0;
  std::size_t group_size = 0;

  static constexpr granularity tensor() noexcept { return {granularity_kind::per_tensor, 0, 0}; }
  static constexpr granularity channel(int axis = 0) noexcept { return {granularity_kind::per_channel, axis, 0}; }
  static constexpr granularity group(std::size_t g) noexcept { return {granularity_kind::per_group, 0, g}; }

  friend bool operator==(const granularity& a, const granularity& b) noexcept {
    return a.kind == b.kind && (a.kind != granularity_kind::per_channel || a.axis == b.axis) &&
           (a.kind != granularity_kind::per_group || a.group_size == b.group_size);
  }

  /// "per_tensor", "per_channel", "per_channel=1", "g128".
  std::string str() const {
    switch (kind) {
      case granularity_kind::per_tensor: return "per_tensor";
      case granularity_kind::per_channel: return axis == 0 ? "per_channel" : "per_channel=1";
      case granularity_kind::per_group: return detail::concat("g", group_size);
    }
    return "?";
  }
};

/// One (scale, zero point) for the whole tensor.
struct per_tensor {
  static constexpr granularity value() noexcept { return granularity::tensor(); }
};

/// One (scale, zero point) per slice along Axis: 0 = per row (output channel), 1 = per column.
template <int Axis = 0>
struct per_channel {
  static_assert(Axis == 0 || Axis == 1, "pare::per_channel<Axis>: template argument 'Axis' must be 0 (rows) or 1 (columns)");
  static constexpr int axis = Axis;
  static constexpr granularity value() noexcept { return granularity::channel(Axis); }
};

/// One (scale, zero point) per G consecutive elements along the input dimension (a row).
template <std::size_t G>
struct per_group {
  static_assert(G >= 1, "pare::per_group<G>: template argument 'G' must be at least 1");
  static constexpr std::size_t group_size = G;
  static constexpr granularity value() noexcept { return granularity::group(G); }
};

template <class T>
struct is_granularity : std::false_type {};
template <>
struct is_granularity<per_tensor> : std::true_type {};
template <int A>
struct is_granularity<per_channel<A>> : std::true_type {};
template <std::size_t G>
struct is_granularity<per_group<G>> : std::true_type {};
template <class T>
inline constexpr bool is_granularity_v = is_granularity<T>::value;

PARE_NAMESPACE_END
