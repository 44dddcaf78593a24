// The observer concept: what a calibration observer is, observed_range, the is_observer trait and observe_range.
#pragma once

// Terms
// -----
// observer    An object that watches data and decides the clipping range [lo, hi] of one
//             quantization group (finite, lo ≤ hi). The quantizer turns the range into
//             (scale, zero point) with pare::params_from_range(lo, hi, format, scheme); an
//             observer never computes scales itself, it only decides what to clip.
// batch       The values handed to one observe() call (any rank and strides for the
//             tensor_view overload). Observers stream: observe() may be called many times
//             (calibration batches) and range() asked at any point. Only
//             ema_minmax_observer weighs batches; every other observer sees the
//             concatenation of all batches, so splitting data into batches does not change
//             its answer (in exact mode, below).
// knob        A runtime setting (EMA momentum, percentile, MSE grid, KL bins) held in the
//             object, not in its type. Knobs are fixed at construction, which validates
//             them (argument_error naming the knob), so an observer is always valid.
// exact mode / histogram mode
//             Observers that need the values themselves (percentile, mse, kl) store them
//             while at most `exact_limit` values have been observed, then switch for good
//             to a fixed-size streaming histogram (pare/stats/observers/histogram.hpp).
//
// The interface every observer has (checked by is_observer<T>):
//
//   struct observed_range { float lo; float hi; };
//   class X_observer {
//    public:
//     void reset();                                  // forget all data (knobs stay)
//     void observe(const float* x, std::size_t n);   // one contiguous batch
//     void observe(tensor_view<const float> t);      // one batch, any rank / strides
//     observed_range range(int_format fmt, scheme_kind scheme) const;
//     static constexpr const char* name = "x";       // the keyword of parse_observer
//   };
//
//   observe_range(proto, x, n, fmt, scheme)          // copy of proto, reset, observe, range
//
// Contracts (normative)
//   * range() returns finite lo ≤ hi. With m, M the minimum and maximum observed: for the
//     asymmetric scheme min(m, 0) ≤ lo and hi ≤ max(M, 0) (only mse widens to 0, the
//     others stay inside [m, M]); for the symmetric scheme max(|lo|, |hi|) ≤ max|x|.
//     It throws pare::error when nothing was observed and argument_error for bits
//     outside [2, 8].
//   * observe() reads nothing when n == 0. A NaN or ±Inf throws value_error naming the
//     index of the first one, and the observer is then unchanged. (The quantizer checks
//     the data before calling, so this is a safety net, not a code path.)
//   * An observer that holds no data copies without allocating: the quantizer copies a
//     prototype for every group (131072 times for a 4096×4096 matrix in groups of 128).
//
// Writing an observer: derive from detail::observer_base<Self> (below), which provides
// both observe() overloads, the NaN/Inf check and the batch boundaries, and give Self a
// `type_name` for messages and a private accumulate(const float*, std::size_t).

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/core/affine.hpp"

PARE_NAMESPACE_BEGIN

/// The clipping range an observer chose: finite, lo ≤ hi.
struct observed_range {
  float lo;
  float hi;
};

namespace detail {

template <class T, class = void>
struct has_observer_interface : std::false_type {};

template <class T>
struct has_observer_interface<
    T, std::void_t<decltype(std::declval<T&>().reset()),
                   decltype(std::declval<T&>().observe(std::declval<const float*>(), std::size_t{})),
                   decltype(std::declval<T&>().observe(std::declval<tensor_view<const float>>())),
                   decltype(std::declval<const T&>().range(int_format{}, scheme_kind::symmetric)), decltype(T::name)>>
    : std::bool_constant<std::is_same_v<decltype(std::declval<const T&>().range(int_format{}, scheme_kind::symmetric)),
                                        observed_range> &&
                         std::is_convertible_v<decltype(T::name), const char*> && std::is_copy_constructible_v<T>> {};

}  // namespace detail

/// True for types with the observer interface described above.
template <class T>
struct is_observer : detail::has_observer_interface<T> {};

template <class T>
inline constexpr bool is_observer_v = is_observer<T>::value;

/// One-shot range of n contiguous values: a copy of `proto` (knobs kept, data dropped)
/// observes x[0, n) as one batch and returns range(fmt, scheme).
template <class Obs>
observed_range observe_range(const Obs& proto, const float* x, std::size_t n, int_format fmt, scheme_kind scheme) {
  static_assert(is_observer_v<Obs>,
                "pare::observe_range: template argument 'Obs' must be an observer type (minmax_observer, "
                "ema_minmax_observer, percentile_observer, mse_observer, kl_observer, any_observer)");
  Obs o = proto;
  o.reset();
  o.observe(x, n);
  return o.range(fmt, scheme);
}

namespace detail {

/// Index of the first NaN or ±Inf in x[0, n), or n when all are finite.
inline std::size_t first_nonfinite(const float* x, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {  // branch-free blocks: the all-finite case vectorises
    bool ok = true;
    for (std::size_t k = 0; k < 64; ++k) ok &= std::fabs(x[i + k]) <= FLT_MAX;
    if (!ok) break;
  }
  for (; i < n; ++i)
    if (!(std::fabs(x[i]) <= FLT_MAX)) return i;
  return n;
}

/// Running min and max with the kernels' zero rule (-0.0 counts as less than +0.0), so
/// the result has the same bits whatever order the values arrive in.
struct min_max {
  float lo = INFINITY;
  float hi = -INFINITY;

  void add(const float* x, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) add(x[i]);
  }
  void add(float v) noexcept {
    if (v < lo || (v == lo && std::signbit(v))) lo = v;
    if (v > hi || (v == hi && !std::signbit(v))) hi = v;
  }
  void add(const min_max& o) noexcept {
    if (o.lo <= o.hi) {
      add(o.lo);
      add(o.hi);
    }
  }
  bool empty() const noexcept { return !(lo <= hi); }
  /// max(|lo|, |hi|).
  float absmax() const noexcept { return std::max(std::fabs(lo), std::fabs(hi)); }
};

/// Calls f(p, n, first) for consecutive runs of t in row-major order: p points at n
/// contiguous floats, the first of which has row-major index `first`. Contiguous views
/// are one run; a strided innermost axis is gathered through a small stack buffer.
template <class F>
void for_each_run(const tensor_view<const float>& t, F&& f) {
  const std::size_t n = t.size();
  if (n == 0) return;
  if (t.is_contiguous()) {  // includes rank 0 (one element)
    f(t.data(), n, std::size_t{0});
    return;
  }
  const std::size_t r = t.rank();
  const std::size_t inner = t.extent(r - 1);
  const std::ptrdiff_t step = t.stride(r - 1);
  std::array<std::size_t, max_rank> idx{};
  std::ptrdiff_t off = 0;  // offset of the current innermost run
  constexpr std::size_t chunk = 256;
  float buf[chunk];
  for (std::size_t first = 0; first < n; first += inner) {
    const float* row = t.data() + off;
    if (step == 1) {
      f(row, inner, first);
    } else {
      for (std::size_t j = 0; j < inner; j += chunk) {
        const std::size_t k = std::min(chunk, inner - j);
        for (std::size_t m = 0; m < k; ++m) buf[m] = row[static_cast<std::ptrdiff_t>(j + m) * step];
        f(static_cast<const float*>(buf), k, first + j);
      }
    }
    for (std::size_t a = r - 1; a-- > 0;) {  // odometer over the outer axes
      off += t.stride(a);
      if (++idx[a] < t.extent(a)) break;
      off -= t.stride(a) * static_cast<std::ptrdiff_t>(t.extent(a));
      idx[a] = 0;
    }
  }
}

/// The observe() pair shared by every concrete observer (CRTP). Derived provides
///   static constexpr const char* type_name;      // for messages, e.g. "mse_observer"
///   void accumulate(const float* x, std::size_t n); // add finite values to the batch
/// and may hide batch_begin() / batch_end() to act on batch boundaries (the EMA does).
/// Values are checked for NaN/Inf before anything is accumulated.
template <class Derived>
class observer_base {
 public:
  /// Observes x[0, n) as one batch.
  void observe(const float* x, std::size_t n) {
    if (n == 0) return;
    if (x == nullptr)
      fail<argument_error>(Derived::type_name, "::observe: argument 'x': expected a pointer to ", n,
                           " floats, got nullptr");
    const std::size_t bad = first_nonfinite(x, n);
    if (bad != n)
      fail<value_error>(Derived::type_name, "::observe: argument 'x': expected finite values, got ", x[bad],
                        " at index ", bad);
    self().batch_begin();
    self().accumulate(x, n);
    self().batch_end();
  }

  /// Observes every element of t (any rank and strides) as one batch.
  void observe(tensor_view<const float> t) {
    if (t.empty()) return;
    if (t.data() == nullptr)
      fail<argument_error>(Derived::type_name, "::observe: argument 't': expected data for shape ", t.shape(),
                           ", got nullptr");
    for_each_run(t, [&](const float* p, std::size_t n, std::size_t first) {
      const std::size_t bad = first_nonfinite(p, n);
      if (bad != n)
        fail<value_error>(Derived::type_name, "::observe: argument 't': expected finite values, got ", p[bad],
                          " at row-major index ", first + bad, " of shape ", t.shape());
    });
    self().batch_begin();
    for_each_run(t, [&](const float* p, std::size_t n, std::size_t) { self().accumulate(p, n); });
    self().batch_end();
  }

 protected:
  void batch_begin() noexcept {}
  void batch_end() noexcept {}

  /// Throws pare::error unless something was observed, and argument_error for a bad format.
  static void check_range_call(bool observed, int_format fmt) {
    if (!observed)
      fail<error>(Derived::type_name, "::range: nothing was observed; call observe() with at least one value first");
    if (fmt.bits < 2 || fmt.bits > 8)
      fail<argument_error>(Derived::type_name, "::range: argument 'bits': expected an integer in [2, 8], got ",
                           fmt.bits);
  }

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

}  // namespace detail

PARE_NAMESPACE_END
