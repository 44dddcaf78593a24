// Model surgery: get/set tensors by name, remove transformer blocks, shrink feed-forward width or attention heads consistently.
#pragma once

// All functions change the model in place and validate everything first (bad input
// changes nothing). Sessions built on the model must be created after the surgery.
//   tensor_names(m)                   every tensor, GGUF names, forward order
//   get_tensor(m, name)               a dense fp32 copy [rows, cols] (norms: [1, dim];
//                                     compressed linears are dequantized/multiplied out)
//   set_tensor(m, name, w)            replaces a tensor by fp32 values of the same shape
//                                     (a compressed linear becomes dense)
//   remove_blocks(m, {l...})          depth pruning: drops whole blocks
//   shrink_ffn(m, l, keep)            keeps FFN neurons `keep` of block l: rows of gate/up,
//                                     columns of down
//   shrink_kv_heads(m, l, keep)       keeps key/value heads `keep` of block l and their
//                                     query heads (GQA groups stay whole): rows of q, k, v,
//                                     columns of attn_output

#include <algorithm>
#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/xtensor_interop.hpp"
#include "pare/model/llama_model.hpp"

#if __has_include(<xtensor/containers/xtensor.hpp>)
#include <xtensor/containers/xtensor.hpp>
#else
#include <xtensor/xtensor.hpp>
#endif

PARE_NAMESPACE_BEGIN

namespace detail {
inline xt::xtensor<float, 2> dense_of(const linear_layer& l) {
  xt::xtensor<float, 2> w = xt::empty<float>({l.out_features(), l.in_features()});
  l.dense_weights(matrix_view<float>(w.data(), w.shape()[0], w.shape()[1]));
  return w;
}
inline bool is_norm_name(const std::string& rest) { return rest == "attn_norm.weight" || rest == "ffn_norm.weight"; }

/// Sorted, unique, in-range indices, else argument_error naming `what`.
inline std::vector<std::size_t> checked_indices(const char* where, const char* what, std::vector<std::size_t> idx,
                                                std::size_t bound, bool allow_empty) {
  std::sort(idx.begin(), idx.end());
  if (std::adjacent_find(idx.begin(), idx.end()) != idx.end())
    fail<argument_error>(where, ": argument '", what, "': expected distinct indices, got a repeated one");
  if (!idx.empty() && idx.back() >= bound)
    fail<argument_error>(where, ": argument '", what, "': expected indices below ", bound, ", got ", idx.back());
  if (!allow_empty && idx.empty()) fail<argument_error>(where, ": argument '", what, "': expected at least one index");
  return idx;
}

inline std::unique_ptr<linear_layer> take_rows(const linear_layer& l, const std::vector<std::size_t>& rows) {
  const xt::xtensor<float, 2> w = dense_of(l);
  xt::xtensor<float, 2> out = xt::empty<float>({rows.size(), l.in_features()});
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < l.in_features(); ++j) out(i, j) = w(rows[i], j);
  return std::make_unique<dense_linear>(matrix_view<const float>(out.data(), rows.size(), l.in_features()));
}
inline std::unique_ptr<linear_layer> take_cols(const linear_layer& l, const std::vector<std::size_t>& cols) {
  const xt::xtensor<float, 2> w = dense_of(l);
  xt::xtensor<float, 2> out = xt::empty<float>({l.out_features(), cols.size()});
  for (std::size_t i = 0; i < l.out_features(); ++i)
    for (std::size_t j = 0; j < cols.size(); ++j) out(i, j) = w(i, cols[j]);
  return std::make_unique<dense_linear>(matrix_view<const float>(out.data(), l.out_features(), cols.size()));
}
}  // namespace detail

inline std::vector<std::string> tensor_names(const llama_model& m) {
  std::vector<std::string> n{"token_embd.weight"};
  for (std::size_t l = 0; l < m.blocks.size(); ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const char* s : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down",
                          "ffn_up"})
      n.push_back(p + s + ".weight");
  }
  n.push_back("output_norm.weight");
  if (!m.tied_classifier) n.push_back("output.weight");
  return n;
}

inline xt::xtensor<float, 2> get_tensor(const llama_model& m, const std::string& name) {
  const std::size_t dim = m.config.dim;
  if (name == "token_embd.weight") {
    xt::xtensor<float, 2> w = xt::empty<float>({static_cast<std::size_t>(m.config.vocab_size), dim});
    std::copy(m.token_embd.data(), m.token_embd.data() + w.size(), w.data());
    return w;
  }
  auto norm = [&](const std::vector<float>& v) {
    xt::xtensor<float, 2> w = xt::empty<float>({std::size_t(1), v.size()});
    std::copy(v.begin(), v.end(), w.data());
    return w;
  };
  if (name == "output_norm.weight") return norm(m.output_norm);
  const std::size_t dot = name.find('.', 4);
  if (name.compare(0, 4, "blk.") == 0 && dot != std::string::npos) {
    const std::string rest = name.substr(dot + 1);
    if (detail::is_norm_name(rest)) {
      const std::size_t l = std::stoul(name.substr(4, dot - 4));
      if (l < m.blocks.size()) return norm(rest == "attn_norm.weight" ? m.blocks[l].attn_norm : m.blocks[l].ffn_norm);
    }
  }
  return detail::dense_of(m.linear(name));
}

inline void set_tensor(llama_model& m, const std::string& name, const matrix_view<const float>& w) {
  const xt::xtensor<float, 2> cur = get_tensor(m, name);  // validates the name
  check_same_shape(("set_tensor: tensor '" + name + "'").c_str(), shape_t{cur.shape()[0], cur.shape()[1]}, w.shape());
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j)
      if (!std::isfinite(w(i, j)))
        detail::fail<value_error>("set_tensor: tensor '", name, "': non-finite value at (", i, ", ", j, ")");
  auto copy_into = [&](float* dst) {
    for (std::size_t i = 0; i < w.rows(); ++i)
      for (std::size_t j = 0; j < w.cols(); ++j) dst[i * w.cols() + j] = w(i, j);
  };
  if (name == "token_embd.weight") {
    copy_into(m.token_embd.data());
    if (m.tied_classifier && m.output->format() == "f32") m.output = std::make_unique<dense_linear>(w);
    return;
  }
  if (name == "output_norm.weight") return copy_into(m.output_norm.data());
  const std::size_t dot = name.find('.', 4);
  const std::string rest = name.substr(dot + 1);
  if (detail::is_norm_name(rest)) {
    llama_block& b = m.blocks[std::stoul(name.substr(4, dot - 4))];
    return copy_into(rest == "attn_norm.weight" ? b.attn_norm.data() : b.ffn_norm.data());
  }
  m.set_linear(name, std::make_unique<dense_linear>(w));
}

inline void remove_blocks(llama_model& m, std::vector<std::size_t> which) {
  which = detail::checked_indices("remove_blocks", "which", std::move(which), m.blocks.size(), true);
  for (std::size_t i = which.size(); i-- > 0;) m.blocks.erase(m.blocks.begin() + static_cast<std::ptrdiff_t>(which[i]));
  m.config.n_layers = static_cast<int>(m.blocks.size());
}

inline void shrink_ffn(llama_model& m, std::size_t layer, std::vector<std::size_t> keep) {
  if (layer >= m.blocks.size())
    detail::fail<argument_error>("shrink_ffn: argument 'layer': expected < ", m.blocks.size(), ", got ", layer);
  llama_block& b = m.blocks[layer];
  keep = detail::checked_indices("shrink_ffn", "keep", std::move(keep), b.w1->out_features(), false);
  auto w1 = detail::take_rows(*b.w1, keep), w3 = detail::take_rows(*b.w3, keep), w2 = detail::take_cols(*b.w2, keep);
  b.w1 = std::move(w1);
  b.w3 = std::move(w3);
  b.w2 = std::move(w2);
}

inline void shrink_kv_heads(llama_model& m, std::size_t layer, std::vector<std::size_t> keep) {
  if (layer >= m.blocks.size())
    detail::fail<argument_error>("shrink_kv_heads: argument 'layer': expected < ", m.blocks.size(), ", got ", layer);
  llama_block& b = m.blocks[layer];
  keep = detail::checked_indices("shrink_kv_heads", "keep", std::move(keep), static_cast<std::size_t>(b.n_kv_heads), false);
  const std::size_t hs = m.config.head_size(), group = static_cast<std::size_t>(b.n_heads / b.n_kv_heads);
  std::vector<std::size_t> kv_rows, q_rows;
  for (std::size_t h : keep) {
    for (std::size_t i = 0; i < hs; ++i) kv_rows.push_back(h * hs + i);
    for (std::size_t g = 0; g < group; ++g)
      for (std::size_t i = 0; i < hs; ++i) q_rows.push_back((h * group + g) * hs + i);
  }
  auto wq = detail::take_rows(*b.wq, q_rows), wk = detail::take_rows(*b.wk, kv_rows),
       wv = detail::take_rows(*b.wv, kv_rows), wo = detail::take_cols(*b.wo, q_rows);
  b.wq = std::move(wq);
  b.wk = std::move(wk);
  b.wv = std::move(wv);
  b.wo = std::move(wo);
  b.n_kv_heads = static_cast<int>(keep.size());
  b.n_heads = static_cast<int>(keep.size() * group);
}

PARE_NAMESPACE_END
