// checkpoint: named fp32 tensors with shapes (the input and output of merging), and their exchange with a llama_model.
#pragma once

// A checkpoint is a std::map from tensor name to {shape, values (row-major)}. Merging
// (average.hpp, task_arithmetic.hpp, ties.hpp) needs checkpoints of one architecture:
// the same names and, per name, the same shape. check_compatible() enforces that and
// finite values; it throws argument_error naming a tensor present in one checkpoint and
// absent from another, shape_error naming a tensor whose shapes differ, value_error
// naming a tensor and position holding NaN/Inf.
//
// With a llama_model (pare/model/surgery.hpp names: tensor_names(m)):
//   checkpoint_of(m)          every tensor as a dense fp32 copy (compressed linears are
//                             dequantized; norms have shape [1, dim]; a tied classifier
//                             is token_embd.weight only)
//   load_checkpoint(m, c)     writes every tensor of c into m; c must hold exactly m's
//                             names and shapes (checked first: on error m is unchanged).
//                             Written linears become dense fp32 (set_tensor); with a
//                             tied classifier the classifier follows token_embd.weight.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/surgery.hpp"

PARE_NAMESPACE_BEGIN

/// One named tensor: its shape and row-major values (values.size() == shape.size()).
struct checkpoint_tensor {
  shape_t shape;
  std::vector<float> values;

  checkpoint_tensor() = default;
  /// Throws shape_error unless values.size() equals the shape's element count.
  checkpoint_tensor(const shape_t& s, std::vector<float> v) : shape(s), values(std::move(v)) {
    if (values.size() != shape.size())
      detail::fail<shape_error>("checkpoint_tensor: argument 'values': expected ", shape.size(), " values for shape ", shape,
                                ", got ", values.size());
  }
};

/// Named tensors, ordered by name.
using checkpoint = std::map<std::string, checkpoint_tensor>;

namespace detail {
/// Same names and shapes as the first checkpoint, finite values everywhere (see above).
inline void check_compatible(const char* where, const std::vector<const checkpoint*>& cks) {
  for (std::size_t i = 0; i < cks.size(); ++i)
    if (!cks[i]) fail<argument_error>(where, ": checkpoint ", i, ": expected a checkpoint, got a null pointer");
  if (cks.empty()) return;
  const checkpoint& ref = *cks[0];
  for (std::size_t i = 1; i < cks.size(); ++i) {
    const checkpoint& c = *cks[i];
    for (const auto& [name, t] : ref) {
      const auto it = c.find(name);
      if (it == c.end())
        fail<argument_error>(where, ": tensor '", name, "': expected in every checkpoint, absent from checkpoint ", i);
      if (it->second.shape != t.shape)
        fail<shape_error>(where, ": tensor '", name, "': shapes disagree: expected ", t.shape, " (checkpoint 0), got ",
                          it->second.shape, " (checkpoint ", i, ")");
    }
    for (const auto& kv : c)
      if (ref.find(kv.first) == ref.end())
        fail<argument_error>(where, ": tensor '", kv.first, "': expected in every checkpoint, absent from checkpoint 0");
  }
  for (std::size_t i = 0; i < cks.size(); ++i)
    for (const auto& [name, t] : *cks[i]) {
      if (t.values.size() != t.shape.size())
        fail<shape_error>(where, ": tensor '", name, "' of checkpoint ", i, ": expected ", t.shape.size(),
                          " values for shape ", t.shape, ", got ", t.values.size());
      for (std::size_t e = 0; e < t.values.size(); ++e)
        if (!std::isfinite(t.values[e]))
          fail<value_error>(where, ": tensor '", name, "' of checkpoint ", i, ": expected finite values, got ", t.values[e],
                            " at flat index ", e);
    }
}

/// The shape tensor `name` has in m (surgery.hpp conventions), without copying it.
inline shape_t model_tensor_shape(const llama_model& m, const std::string& name) {
  const std::size_t dim = static_cast<std::size_t>(m.config.dim);
  if (name == "token_embd.weight") return shape_t{static_cast<std::size_t>(m.config.vocab_size), dim};
  if (name == "output_norm.weight") return shape_t{1, m.output_norm.size()};
  const std::size_t dot = name.find('.', 4);
  if (name.compare(0, 4, "blk.") == 0 && dot != std::string::npos && is_norm_name(name.substr(dot + 1))) {
    const std::size_t l = std::stoul(name.substr(4, dot - 4));
    const llama_block& b = m.blocks.at(l);
    return shape_t{1, name.substr(dot + 1) == "attn_norm.weight" ? b.attn_norm.size() : b.ffn_norm.size()};
  }
  const linear_layer& l = m.linear(name);
  return shape_t{l.out_features(), l.in_features()};
}

/// Per-block head counts must agree where both models have the block (shapes alone do
/// not show them; a different block count shows as different tensor names).
inline void check_same_heads(const char* where, const llama_model& a, const llama_model& b, const char* what) {
  for (std::size_t l = 0; l < std::min(a.blocks.size(), b.blocks.size()); ++l)
    if (a.blocks[l].n_heads != b.blocks[l].n_heads || a.blocks[l].n_kv_heads != b.blocks[l].n_kv_heads)
      fail<argument_error>(where, ": ", what, ": block ", l, ": expected ", a.blocks[l].n_heads, " heads / ",
                           a.blocks[l].n_kv_heads, " kv heads, got ", b.blocks[l].n_heads, " / ", b.blocks[l].n_kv_heads);
}
}  // namespace detail

/// Every tensor of m as a dense fp32 copy, under its GGUF name (see above).
inline checkpoint checkpoint_of(const llama_model& m) {
  checkpoint c;
  for (const std::string& name : tensor_names(m)) {
    const auto w = get_tensor(m, name);
    const shape_t s{w.shape()[0], w.shape()[1]};
    c.emplace(name, checkpoint_tensor(s, std::vector<float>(w.data(), w.data() + w.size())));
  }
  return c;
}

/// Checks that `c` has exactly m's tensor names and shapes and finite values
/// (argument_error / shape_error / value_error naming the tensor).
inline void check_loadable(const char* where, const llama_model& m, const checkpoint& c) {
  const std::vector<std::string> names = tensor_names(m);
  for (const std::string& name : names) {
    const auto it = c.find(name);
    if (it == c.end()) detail::fail<argument_error>(where, ": tensor '", name, "': expected in the checkpoint, absent");
    const shape_t want = detail::model_tensor_shape(m, name);
    if (it->second.shape != want)
      detail::fail<shape_error>(where, ": tensor '", name, "': shapes disagree: expected ", want, " (model), got ",
                                it->second.shape, " (checkpoint)");
  }
  if (c.size() != names.size())
    for (const auto& kv : c)
      if (std::find(names.begin(), names.end(), kv.first) == names.end())
        detail::fail<argument_error>(where, ": tensor '", kv.first, "': expected one of the model's tensors, the model has none of that name");
  detail::check_compatible(where, {&c});
}

/// Writes `c` into m (see above). Throws before changing anything.
inline void load_checkpoint(llama_model& m, const checkpoint& c) {
  check_loadable("load_checkpoint", m, c);
  for (const std::string& name : tensor_names(m)) {
    const checkpoint_tensor& t = c.at(name);
    set_tensor(m, name, matrix_view<const float>(t.values.data(), t.shape[0], t.shape[1]));
  }
  if (m.tied_classifier && m.output->format() != "f32")
    m.output = std::make_unique<dense_linear>(
        matrix_view<const float>(m.token_embd.data(), static_cast<std::size_t>(m.config.vocab_size),
                                 static_cast<std::size_t>(m.config.dim)));
}

namespace detail {
/// Checkpoints of the models (argument_error for a null pointer).
inline std::vector<checkpoint> checkpoints_of(const char* where, const std::vector<const llama_model*>& models) {
  std::vector<checkpoint> out;
  out.reserve(models.size());
  for (std::size_t i = 0; i < models.size(); ++i) {
    if (!models[i]) fail<argument_error>(where, ": model ", i, ": expected a model, got a null pointer");
    out.push_back(checkpoint_of(*models[i]));
  }
  return out;
}

/// Checks a merge result against dst (names, shapes, values) and every model's heads
/// against dst's, then loads it: the last step of the *_into functions.
inline void finish_merge_into(const char* where, llama_model& dst, const std::vector<const llama_model*>& models,
                              const checkpoint& result) {
  check_loadable(where, dst, result);
  for (std::size_t i = 0; i < models.size(); ++i) check_same_heads(where, dst, *models[i], concat("model ", i).c_str());
  load_checkpoint(dst, result);
}
inline std::vector<const checkpoint*> pointers(const std::vector<checkpoint>& v) {
  std::vector<const checkpoint*> p;
  for (const checkpoint& c : v) p.push_back(&c);
  return p;
}
}  // namespace detail

PARE_NAMESPACE_END
