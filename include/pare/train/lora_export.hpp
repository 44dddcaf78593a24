// Exporting trained LoRA adapters into a llama_model: attach them as lora_linear layers, merge them into dense weights, or merge and re-quantize in the base layer's own format.
#pragma once

// Three ways to put a lora_set (pare/train/lora.hpp) into the model it was trained on:
//   attach_lora(m, s)              every adapted layer becomes lora_linear(base, A, B, s): the
//                                  base layer (dense, pare-quantized, ggml, ...) is kept as
//                                  stored, bytes untouched (QLoRA-style); a layer that is
//                                  already a lora_linear keeps its base and gets the new adapter
//   merge_lora(m, s)               dense fp32 bases only: W ← W + s·B·A (in double, rounded
//                                  once to fp32), the layer stays a dense_linear
//   merge_lora_requantize(m, s)    W_eff = dense(base) + s·B·A re-encoded in the base's own
//                                  kind: dense_linear → dense_linear, quantized_linear → the
//                                  same quant_config, ggml_linear → the same ggml type (without
//                                  an importance matrix)
// and back, to resume training from a model holding lora_linear layers:
//   lora_base_params<T>(m)         the frozen base (each lora_linear's base layer, dense)
//   lora_from_model<T>(m)          the adapters the model holds, as a lora_set
// In every case "the base" of a layer that is a lora_linear is the layer it wraps (its
// adapter is replaced, never added twice). Adapters are taken in double and rounded once to
// fp32. Errors (the model is unchanged): argument_error for a tensor the model does not
// have, unsupported_error for a tied classifier or (merges) a base kind that cannot be
// re-encoded, shape_error for a layer whose shape is not the adapter's, value_error for a
// non-finite adapter value.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/model/layers/ggml_linear.hpp"
#include "pare/model/layers/linear.hpp"
#include "pare/model/layers/lora_linear.hpp"
#include "pare/model/layers/quantized_linear.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/train/lora.hpp"

PARE_NAMESPACE_BEGIN

/// One layer written by an export: its name and its format afterwards.
struct lora_export_record {
  std::string name;
  std::string format;
};

namespace detail {

/// The stored layer under a possible lora_linear wrapper.
inline const linear_layer& lora_base_layer(const linear_layer& l) {
  if (const auto* w = dynamic_cast<const lora_linear*>(&l)) return w->base();
  return l;
}

/// Checks every adapter of s against m (names, tied classifier, shapes, finite values).
template <class T>
void lora_check_model(const llama_model& m, const lora_set<T>& s, const char* where) {
  for (const auto& a : s.adapters()) {
    if (a.name == "output.weight" && m.tied_classifier)
      fail<unsupported_error>(where, ": tensor 'output.weight': the model's classifier is tied to the token embedding; "
                                     "LoRA adapts untied linear layers only");
    if (lora_tensor_kind(a.name).empty())
      fail<argument_error>(where, ": adapter '", a.name, "': expected a linear layer name such as blk.0.attn_q.weight");
    const linear_layer& l = m.linear(a.name);  // argument_error for a block the model lacks
    if (l.out_features() != a.out || l.in_features() != a.in)
      fail<shape_error>(where, ": layer '", a.name, "': expected [", a.out, ", ", a.in, "] (the adapter's shape), got [",
                        l.out_features(), ", ", l.in_features(), "]");
    if (a.rank == 0 || a.a.size() != a.rank * a.in || a.b.size() != a.out * a.rank)
      fail<shape_error>(where, ": adapter '", a.name, "': expected A [", a.rank, ", ", a.in, "] and B [", a.out, ", ",
                        a.rank, "], got ", a.a.size(), " and ", a.b.size(), " values");
    if (!(std::isfinite(double(a.scale)) && double(a.scale) > 0.0))
      fail<argument_error>(where, ": adapter '", a.name, "': expected a finite scale > 0, got ", a.scale);
    for (std::size_t i = 0; i < a.a.size(); ++i)
      if (!std::isfinite(double(a.a[i])))
        fail<value_error>(where, ": adapter '", a.name, "': non-finite value ", a.a[i], " in A at ", i);
    for (std::size_t i = 0; i < a.b.size(); ++i)
      if (!std::isfinite(double(a.b[i])))
        fail<value_error>(where, ": adapter '", a.name, "': non-finite value ", a.b[i], " in B at ", i);
  }
}

/// dense(base) + s·B·A [out, in], the product and sum in double, rounded once.
template <class T>
std::vector<float> lora_effective(const linear_layer& base, const lora_adapter<T>& a) {
  std::vector<float> w(a.out * a.in);
  base.dense_weights(matrix_view<float>(w.data(), a.out, a.in));
  std::vector<double> row(a.in);
  for (std::size_t i = 0; i < a.out; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    for (std::size_t k = 0; k < a.rank; ++k) {
      const double bik = double(a.b[i * a.rank + k]);
      for (std::size_t j = 0; j < a.in; ++j) row[j] += bik * double(a.a[k * a.in + j]);
    }
    for (std::size_t j = 0; j < a.in; ++j)
      w[i * a.in + j] = static_cast<float>(double(w[i * a.in + j]) + double(a.scale) * row[j]);
  }
  return w;
}

/// A layer that stands in a model slot for a moment while its layer is being wrapped.
class lora_placeholder_linear final : public linear_layer {
 public:
  lora_placeholder_linear(std::size_t out, std::size_t in) : out_(out), in_(in) {}
  std::size_t in_features() const noexcept override { return in_; }
  std::size_t out_features() const noexcept override { return out_; }
  void forward(const matrix_view<const float>&, const matrix_view<float>&) const override {
    fail<unsupported_error>("lora placeholder: not a usable layer");
  }
  std::string format() const override { return "placeholder"; }
  std::size_t storage_bytes() const noexcept override { return 0; }
  void dense_weights(const matrix_view<float>&) const override {
    fail<unsupported_error>("lora placeholder: not a usable layer");
  }

 private:
  std::size_t out_, in_;
};

template <class T>
std::vector<float> lora_to_float(const std::vector<T>& v) {
  return std::vector<float>(v.begin(), v.end());
}

}  // namespace detail

/// Wraps every adapted layer in a lora_linear (see the header comment).
template <class T>
std::vector<lora_export_record> attach_lora(llama_model& m, const lora_set<T>& s) {
  detail::lora_check_model(m, s, "attach_lora");
  std::vector<lora_export_record> rec;
  for (const auto& a : s.adapters()) {
    const std::vector<float> af = detail::lora_to_float(a.a), bf = detail::lora_to_float(a.b);
    const matrix_view<const float> av(af.data(), a.rank, a.in), bv(bf.data(), a.out, a.rank);
    const float scale = static_cast<float>(a.scale);
    auto* existing = dynamic_cast<lora_linear*>(const_cast<linear_layer*>(&m.linear(a.name)));
    if (existing) {
      existing->set_adapter(av, bv, scale);  // checked above: does not throw
    } else {
      std::unique_ptr<linear_layer> base =
          m.exchange_linear(a.name, std::make_unique<detail::lora_placeholder_linear>(a.out, a.in));
      m.set_linear(a.name, std::make_unique<lora_linear>(std::move(base), av, bv, scale));
    }
    rec.push_back({a.name, m.linear(a.name).format()});
  }
  return rec;
}

namespace detail {
/// Puts built[n] in place of adapter n's layer (all built first, so nothing changes
/// unless every layer could be made); one record per layer.
template <class T>
std::vector<lora_export_record> lora_install(llama_model& m, const lora_set<T>& s,
                                             std::vector<std::unique_ptr<linear_layer>>& built) {
  std::vector<lora_export_record> rec;
  for (std::size_t n = 0; n < built.size(); ++n) {
    const std::string& name = s.adapters()[n].name;
    m.set_linear(name, std::move(built[n]));
    rec.push_back({name, m.linear(name).format()});
  }
  return rec;
}
}  // namespace detail

/// W ← W + s·B·A for every adapted layer, whose base must be a dense fp32 layer
/// (unsupported_error naming the layer and its format otherwise; use attach_lora or
/// merge_lora_requantize for quantized bases).
template <class T>
std::vector<lora_export_record> merge_lora(llama_model& m, const lora_set<T>& s) {
  detail::lora_check_model(m, s, "merge_lora");
  for (const auto& a : s.adapters()) {
    const linear_layer& base = detail::lora_base_layer(m.linear(a.name));
    if (!dynamic_cast<const dense_linear*>(&base))
      detail::fail<unsupported_error>("merge_lora: layer '", a.name, "': expected a dense f32 base, got '", base.format(),
                                      "' (attach_lora keeps it as an adapter; merge_lora_requantize re-encodes it)");
  }
  std::vector<std::unique_ptr<linear_layer>> built;
  for (const auto& a : s.adapters()) {
    const std::vector<float> w = detail::lora_effective(detail::lora_base_layer(m.linear(a.name)), a);
    built.push_back(std::make_unique<dense_linear>(matrix_view<const float>(w.data(), a.out, a.in)));
  }
  return detail::lora_install(m, s, built);
}

/// dense(base) + s·B·A re-encoded in the base's own kind (see the header comment);
/// unsupported_error for any other kind (factorized, shared, 2:4 sparse, w8a8 ...).
template <class T>
std::vector<lora_export_record> merge_lora_requantize(llama_model& m, const lora_set<T>& s) {
  detail::lora_check_model(m, s, "merge_lora_requantize");
  for (const auto& a : s.adapters()) {
    const linear_layer& base = detail::lora_base_layer(m.linear(a.name));
    if (!dynamic_cast<const dense_linear*>(&base) && !dynamic_cast<const quantized_linear*>(&base) &&
        !dynamic_cast<const ggml_linear*>(&base))
      detail::fail<unsupported_error>("merge_lora_requantize: layer '", a.name,
                                      "': expected a dense, pare-quantized or ggml base layer, got '", base.format(),
                                      "' (attach_lora keeps it as an adapter)");
  }
  std::vector<std::unique_ptr<linear_layer>> built;
  for (const auto& a : s.adapters()) {
    const linear_layer& base = detail::lora_base_layer(m.linear(a.name));
    const std::vector<float> w = detail::lora_effective(base, a);
    const matrix_view<const float> wv(w.data(), a.out, a.in);
    if (const auto* q = dynamic_cast<const quantized_linear*>(&base))
      built.push_back(std::make_unique<quantized_linear>(wv, q->tensor().config));
    else if (const auto* g = dynamic_cast<const ggml_linear*>(&base))
      built.push_back(std::make_unique<ggml_linear>(wv, g->tensor().format()));
    else
      built.push_back(std::make_unique<dense_linear>(wv));
  }
  return detail::lora_install(m, s, built);
}

/// The frozen base of a model whose adapted layers are lora_linear (QLoRA resume):
/// llama_params::from_model(m) with each lora_linear's tensor taken from its base layer
/// (from_model alone would give base + s·B·A).
template <class T>
llama_params<T> lora_base_params(const llama_model& m) {
  llama_params<T> p = llama_params<T>::from_model(m);
  for (const std::string& name : m.linear_names()) {
    if (name == "output.weight" && m.tied_classifier) continue;
    const auto* l = dynamic_cast<const lora_linear*>(&m.linear(name));
    if (!l) continue;
    std::vector<float> w(l->out_features() * l->in_features());
    l->base().dense_weights(matrix_view<float>(w.data(), l->out_features(), l->in_features()));
    std::vector<T>& dst = p.at(name);
    std::copy(w.begin(), w.end(), dst.begin());
  }
  return p;
}

/// The adapters held by the model's lora_linear layers as a lora_set (A, B and s as stored,
/// in fp32; the config's rank and α are those of the first adapter). argument_error if the
/// model has no lora_linear layer.
template <class T>
lora_set<T> lora_from_model(const llama_model& m) {
  std::vector<lora_adapter<T>> adapters;
  for (const std::string& name : m.linear_names()) {
    if (name == "output.weight" && m.tied_classifier) continue;
    const auto* l = dynamic_cast<const lora_linear*>(&m.linear(name));
    if (!l) continue;
    lora_adapter<T> a;
    a.name = name;
    a.out = l->out_features();
    a.in = l->in_features();
    a.rank = l->rank();
    a.scale = T(l->scale());
    a.a.assign(l->a().begin(), l->a().end());
    a.b.assign(l->b().begin(), l->b().end());
    adapters.push_back(std::move(a));
  }
  if (adapters.empty())
    detail::fail<argument_error>("lora_from_model: argument 'm': expected a model with lora_linear layers, got none");
  lora_config cfg;
  cfg.rank = adapters.front().rank;
  cfg.alpha = double(adapters.front().scale) * double(cfg.rank);
  return lora_set<T>::from_adapters(cfg, std::move(adapters));
}

PARE_NAMESPACE_END
