// Model-level weight sharing: k-means-cluster (or hash) every selected linear layer of a llama_model.
#pragma once

// kmeans_linears(m, "kmeans:4bit[:per_row][:iters=N][:seed=S]", select) replaces each
// selected linear layer by a codebook_linear clustered under the spec
// (pare/share/kmeans.hpp); hash_linears(m, "hash:x8[:seed=S][:sign]", select) by a
// hashed_linear (pare/share/hashing.hpp). Every layer's weights are read with
// dense_weights() (a layer compressed before is clustered from its dequantized weights).
// With a tied classifier, compressing output.weight also replaces the embedding rows by
// the shared classifier rows (one stored tensor, as in quantize_linears). Norms stay
// fp32. The spec is parsed and every new layer built before the model is changed, so a
// bad spec or a NaN weight changes nothing.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/pipeline/quantize_linears.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/layers/shared_linear.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {
template <class Make>
std::vector<layer_change> share_linears(llama_model& m, const std::function<bool(const std::string&)>& select, Make&& make) {
  std::vector<std::pair<std::string, std::unique_ptr<linear_layer>>> built;
  std::vector<layer_change> out;
  for (const std::string& name : m.linear_names()) {
    if (select && !select(name)) continue;
    const linear_layer& cur = m.linear(name);
    std::vector<float> w(cur.out_features() * cur.in_features());
    cur.dense_weights(matrix_view<float>(w.data(), cur.out_features(), cur.in_features()));
    auto layer = make(matrix_view<const float>(w.data(), cur.out_features(), cur.in_features()));
    out.push_back(layer_change{name, layer->format(), layer->backend(), false, ""});
    built.emplace_back(name, std::move(layer));
  }
  for (auto& [name, layer] : built) m.set_linear(name, std::move(layer));
  return out;
}
}  // namespace detail

/// Clusters every selected linear layer (all when `select` is empty) under
/// kmeans_config::parse(spec). Returns one record per replaced layer.
inline std::vector<layer_change> kmeans_linears(llama_model& m, const std::string& spec,
                                                const std::function<bool(const std::string&)>& select = {}) {
  const kmeans_config cfg = kmeans_config::parse(spec);
  return detail::share_linears(m, select, [&](const matrix_view<const float>& w) {
    return std::make_unique<codebook_linear>(w, cfg);
  });
}

/// Replaces every selected linear layer by its HashedNets fit under hashed_config::parse(spec).
inline std::vector<layer_change> hash_linears(llama_model& m, const std::string& spec,
                                              const std::function<bool(const std::string&)>& select = {}) {
  const hashed_config cfg = hashed_config::parse(spec);
  return detail::share_linears(m, select, [&](const matrix_view<const float>& w) {
    return std::make_unique<hashed_linear>(w, cfg);
  });
}

PARE_NAMESPACE_END
