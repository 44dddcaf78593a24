// Merging whole llama_models: their exchange with checkpoints (checkpoint_of, load_checkpoint) and the *_into forms of averaging, task arithmetic and TIES.
#pragma once

// With a llama_model (pare/model/surgery.hpp names: tensor_names(m)):
//   checkpoint_of(m)          every tensor as a dense fp32 copy (compressed linears are
//                             dequantized; norms have shape [1, dim]; a tied classifier
//                             is token_embd.weight only)
//   load_checkpoint(m, c)     writes every tensor of c into m; c must hold exactly m's
//                             names and shapes (checked first: on error m is unchanged).
//                             Written linears become dense fp32 (set_tensor); with a
//                             tied classifier the classifier follows token_embd.weight.
//   weighted_average_into, task_arithmetic_into, ties_merge_into: the merges of
//                             pare/merge/ over models of dst's architecture, written into
//                             dst (which may be one of the inputs).

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"
#include "pare/merge/average.hpp"
#include "pare/merge/checkpoint.hpp"
#include "pare/merge/task_arithmetic.hpp"
#include "pare/merge/ties.hpp"
#include "pare/model/llama_model.hpp"
#include "pare/model/surgery.hpp"

PARE_NAMESPACE_BEGIN

namespace detail {
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
}  // namespace detail

/// The weighted average of models of dst's architecture, written into dst (see above).
inline void weighted_average_into(llama_model& dst, const std::vector<const llama_model*>& models,
                                  const std::vector<double>& weights = {}, bool normalize = true) {
  const char* where = "weighted_average_into";
  const std::vector<checkpoint> cks = detail::checkpoints_of(where, models);
  const checkpoint r = detail::weighted_average_impl(where, detail::pointers(cks), weights, normalize);
  detail::finish_merge_into(where, dst, models, r);
}

/// Task arithmetic over models of dst's architecture, written into dst (see above).
inline void task_arithmetic_into(llama_model& dst, const llama_model& base, const std::vector<const llama_model*>& tuned,
                                 const std::vector<double>& lambdas) {
  const char* where = "task_arithmetic_into";
  detail::task_lambdas(where, tuned.size(), lambdas);
  const std::vector<checkpoint> b = detail::checkpoints_of(where, {&base});
  const std::vector<checkpoint> t = detail::checkpoints_of(where, tuned);
  const checkpoint r = detail::task_arithmetic_impl(where, b[0], detail::pointers(t), lambdas);
  std::vector<const llama_model*> all{&base};
  all.insert(all.end(), tuned.begin(), tuned.end());
  detail::finish_merge_into(where, dst, all, r);
}

/// TIES-merging over models of dst's architecture, written into dst (see above).
inline void ties_merge_into(llama_model& dst, const llama_model& base, const std::vector<const llama_model*>& tuned,
                            const ties_options& opt = {}) {
  const char* where = "ties_merge_into";
  opt.validate(where);
  const std::vector<checkpoint> b = detail::checkpoints_of(where, {&base});
  const std::vector<checkpoint> t = detail::checkpoints_of(where, tuned);
  const checkpoint r = detail::ties_merge_impl(where, b[0], detail::pointers(t), opt);
  std::vector<const llama_model*> all{&base};
  all.insert(all.end(), tuned.begin(), tuned.end());
  detail::finish_merge_into(where, dst, all, r);
}

PARE_NAMESPACE_END
