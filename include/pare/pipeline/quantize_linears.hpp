// Model-level compression steps: quantize every selected linear layer of a llama_model, with stated fallbacks.
#pragma once

// quantize_linears(m, cfg, select) replaces each selected linear layer by a
// quantized_linear under `cfg`. A layer whose input width the config cannot take (a
// group size that does not divide it) falls back to the same format per output channel
// and the returned record says so. With a tied classifier, quantizing output.weight also
// replaces the embedding rows by the dequantized classifier rows (one stored tensor).
// Norms stay fp32.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pare/model/llama_model.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/quant/quant_config.hpp"

PARE_NAMESPACE_BEGIN

struct layer_change {
  std::string name;
  std::string format;    ///< the config applied
  std::string backend;   ///< how the forward pass runs it
  bool fallback = false;
  std::string reason;    ///< why it fell back, and other notes ("; " between them)

  void add_reason(const std::string& note) { reason += (reason.empty() ? "" : "; ") + note; }
};

/// The config a layer of `k` inputs gets under cfg: a group size that does not divide k
/// falls back to the same format per output channel, and `ch` records why.
inline quant_config layer_config_for(const quant_config& cfg, std::size_t k, layer_change& ch) {
  quant_config c = cfg;
  if (c.gran.kind != granularity_kind::per_group || k % c.gran.group_size == 0) return c;
  ch.fallback = true;
  ch.reason = detail::concat("in_features ", k, " is not a multiple of group ", c.gran.group_size);
  c.gran = granularity::channel(0);
  return c;
}

inline std::vector<layer_change> quantize_linears(llama_model& m, const quant_config& cfg,
                                                  const std::function<bool(const std::string&)>& select = {}) {
  std::vector<layer_change> out;
  for (const std::string& name : m.linear_names()) {
    if (select && !select(name)) continue;
    const linear_layer& cur = m.linear(name);
    layer_change ch{name, "", "", false, ""};
    const quant_config c = layer_config_for(cfg, cur.in_features(), ch);
    xt::xtensor<float, 2> w = xt::empty<float>({cur.out_features(), cur.in_features()});
    cur.dense_weights(matrix_view<float>(w.data(), w.shape()[0], w.shape()[1]));
    auto q = std::make_unique<quantized_linear>(matrix_view<const float>(w.data(), w.shape()[0], w.shape()[1]), c);
    ch.format = q->format();
    ch.backend = q->backend();
    m.set_linear(name, std::move(q));
    out.push_back(ch);
  }
  return out;
}

PARE_NAMESPACE_END
