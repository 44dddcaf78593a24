// quantizer<Format, Granularity, Scheme, Observer, Rounding>: the compile-time composition of a linear quantizer.
#pragma once

// A quantizer is assembled from one policy per decision (llama.cpp's block formats are
// policies too: quantizer<ggml::q4_K>, in pare/ggml/quantizer.hpp):
//
//   pare::quantizer<pare::int_bits<4>, pare::per_group<128>, pare::asymmetric, pare::mse_observer> q;
//   pare::quantized_tensor t = q.quantize(pare::matrix_of(w));   // w: [out_features, in_features]
//
// Runtime knobs (the observer's settings, the stochastic-rounding seed) live in the
// object. `config()` gives the equivalent runtime quant_config; quantize(w, q.config())
// returns exactly the same tensor.

#include <cstdint>
#include <type_traits>

#include "pare/quant/format.hpp"
#include "pare/quant/granularity.hpp"
#include "pare/quant/quantize.hpp"
#include "pare/quant/rounding.hpp"
#include "pare/quant/scheme.hpp"

PARE_NAMESPACE_BEGIN

template <class Format, class Granularity = void, class Scheme = symmetric, class Observer = minmax_observer,
          class Rounding = nearest_even>
class quantizer {
  static_assert(is_format_v<Format>,
                "pare::quantizer: template argument 'Format' must be pare::int_bits<B> or pare::uint_bits<B>, B in [2, 8]");
  static_assert(is_granularity_v<Granularity>,
                "pare::quantizer: template argument 'Granularity' must be pare::per_tensor, pare::per_channel<Axis> "
                "or pare::per_group<G>");
  static_assert(is_scheme_v<Scheme>,
                "pare::quantizer: template argument 'Scheme' must be pare::symmetric or pare::asymmetric");
  static_assert(is_observer_v<Observer>,
                "pare::quantizer: template argument 'Observer' must be an observer type (minmax_observer, "
                "ema_minmax_observer, percentile_observer, mse_observer, kl_observer)");
  static_assert(is_rounding_v<Rounding>,
                "pare::quantizer: template argument 'Rounding' must be pare::nearest_even or pare::stochastic");

 public:
  using format_type = Format;
  using granularity_type = Granularity;
  using scheme_type = Scheme;
  using observer_type = Observer;
  using rounding_type = Rounding;

  explicit quantizer(Observer observer = Observer{}, std::uint64_t seed = 0) : observer_(observer), seed_(seed) {}

  const Observer& observer() const noexcept { return observer_; }
  std::uint64_t seed() const noexcept { return seed_; }

  /// The equivalent runtime configuration.
  quant_config config() const {
    quant_config c;
    c.format = Format::format();
    c.scheme = Scheme::kind;
    c.gran = Granularity::value();
    c.observer = any_observer(observer_);
    c.rounding = Rounding::kind;
    c.seed = seed_;
    return c;
  }

  /// Quantizes w [out_features, in_features] (any strides).
  quantized_tensor quantize(matrix_view<const float> w) const { return detail::quantize_with(w, config(), observer_, quantized_tensor{}); }
  quantized_tensor operator()(matrix_view<const float> w) const { return quantize(w); }

  /// y = dequantize(quantize(x)) (requires nearest_even rounding).
  void fake_quantize(matrix_view<const float> x, matrix_view<float> y) const {
    static_assert(std::is_same_v<Rounding, nearest_even>,
                  "pare::quantizer::fake_quantize: requires Rounding = pare::nearest_even");
    detail::fake_quantize_with(x, config(), observer_, y);
  }

 private:
  Observer observer_;
  std::uint64_t seed_;
};

PARE_NAMESPACE_END
