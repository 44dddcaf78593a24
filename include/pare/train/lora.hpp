// LoRA adapters (Hu et al. 2021) over a llama_params<T>: selection by GGUF name, PEFT-style init, W_eff = W + s·B·A, adapter gradients, a flat parameter view.
#pragma once

// For each selected linear tensor W [out, in] (GGUF names, e.g. blk.0.attn_q.weight) an
// adapter holds A [r, in] and B [out, r] and the scale s = α / r; the model trains
//     W_eff = W + s·B·A
// with W frozen (kept in a separate llama_params, the "base"). Initialisation as PEFT's
// default: B = 0, A ~ kaiming_uniform(a = √5) = U(−1/√in, 1/√in), drawn from pare's
// counter-based rng (pare/core/rng.hpp) keyed by (seed, tensor name), so a tensor's A does
// not depend on which other tensors are adapted. Given G = ∂L/∂W_eff (what loss_and_grad
// returns for that tensor),
//     ∂L/∂B = s·G·Aᵀ [out, r]        ∂L/∂A = s·Bᵀ·G [r, in]
// A training step (the optimizer is the caller's, e.g. pare/train/'s AdamW):
//     lora.apply(base, eff);                  // eff: a copy of base made once
//     loss_and_grad(eff, tokens, &g);
//     lora.backward(g);                       // fills grad_a, grad_b of every adapter
//     for (auto& p : lora.parameters()) step(*p.value, *p.grad);
// or, with pare's optimizers: parameter_set ps = lora_parameter_set(lora); opt.step(ps, lr).
// Exporting into a llama_model: pare/train/lora_export.hpp.
// Adaptable tensors: blk.{l}.attn_{q,k,v,output}.weight, blk.{l}.ffn_{gate,down,up}.weight
// and an untied output.weight (a tied classifier is the token embedding, not a linear
// layer of llama_params; naming it is an unsupported_error).
// Errors (nothing is built or changed): argument_error for rank 0, rank > min(out, in) of a
// selected tensor, α not finite and > 0, an unknown tensor name or kind, a selection of no
// tensor; shape_error when params do not have the adapters' shapes.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/rng.hpp"
#include "pare/model/llama_grad.hpp"
#include "pare/train/parameter_set.hpp"

PARE_NAMESPACE_BEGIN

/// Rank, α (s = α / rank) and the seed of A's initialisation.
struct lora_config {
  std::size_t rank = 8;
  double alpha = 16.0;
  std::uint64_t seed = 0;

  double scale() const noexcept { return alpha / double(rank); }
  void validate(const char* where) const {
    if (rank == 0) detail::fail<argument_error>(where, ": argument 'rank': expected a rank ≥ 1, got 0");
    if (!(std::isfinite(alpha) && alpha > 0.0))
      detail::fail<argument_error>(where, ": argument 'alpha': expected a finite value > 0, got ", alpha);
  }
};

/// Which linear tensors (GGUF names) get an adapter.
using lora_selector = std::function<bool(const std::string&)>;

/// The kind of a linear tensor name: "attn_q" for blk.3.attn_q.weight, "output" for
/// output.weight; empty for anything else.
inline std::string lora_tensor_kind(const std::string& name) {
  if (name == "output.weight") return "output";
  const std::string pre = "blk.", suf = ".weight";
  if (name.size() <= pre.size() + suf.size() || name.compare(0, pre.size(), pre) != 0 ||
      name.compare(name.size() - suf.size(), suf.size(), suf) != 0)
    return {};
  const std::size_t dot = name.find('.', pre.size());
  if (dot == std::string::npos || dot == pre.size()) return {};
  if (name.find_first_not_of("0123456789", pre.size()) != dot) return {};
  const std::string kind = name.substr(dot + 1, name.size() - suf.size() - dot - 1);
  for (const char* k : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"})
    if (kind == k) return kind;
  return {};
}

namespace lora_targets {
/// Every adaptable linear tensor.
inline lora_selector all_linears() {
  return [](const std::string& name) { return !lora_tensor_kind(name).empty(); };
}
/// The tensors of the given kinds in every block, e.g. {"attn_q", "attn_v"} (kinds:
/// attn_q attn_k attn_v attn_output ffn_gate ffn_down ffn_up output); argument_error for
/// an unknown kind or an empty list.
inline lora_selector kinds(std::vector<std::string> ks) {
  if (ks.empty()) detail::fail<argument_error>("lora_targets::kinds: argument 'kinds': expected at least one kind, got none");
  for (const std::string& k : ks) {
    bool known = false;
    for (const char* c : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up", "output"})
      known = known || k == c;
    if (!known)
      detail::fail<argument_error>("lora_targets::kinds: argument 'kinds': expected attn_q, attn_k, attn_v, attn_output, "
                                   "ffn_gate, ffn_down, ffn_up or output, got '", k, "'");
  }
  return [ks = std::move(ks)](const std::string& name) {
    const std::string k = lora_tensor_kind(name);
    return !k.empty() && std::find(ks.begin(), ks.end(), k) != ks.end();
  };
}
}  // namespace lora_targets

/// One adapter: A [rank, in], B [out, rank], row-major, and their gradients.
template <class T>
struct lora_adapter {
  std::string name;  ///< the adapted tensor (GGUF name)
  std::size_t out = 0, in = 0, rank = 0;
  T scale = T(0);  ///< s = α / rank
  std::vector<T> a, b;
  std::vector<T> grad_a, grad_b;  ///< ∂L/∂A, ∂L/∂B after backward()
};

/// A named view of one trainable vector and its gradient, e.g. "blk.0.attn_q.weight.lora_a".
template <class T>
struct lora_param {
  std::string name;
  std::vector<T>* value = nullptr;
  std::vector<T>* grad = nullptr;
};

namespace detail {
template <class T>
struct lora_slot {
  std::string name;
  std::size_t out = 0, in = 0;
  const std::vector<T>* w = nullptr;
};
/// The adaptable linear tensors of p with their [out, in] shapes.
template <class T>
std::vector<lora_slot<T>> lora_slots(const llama_params<T>& p) {
  std::vector<lora_slot<T>> s;
  const std::size_t dim = p.config.dim, hs = p.config.head_size();
  for (std::size_t l = 0; l < p.blocks.size(); ++l) {
    const auto& b = p.blocks[l];
    const std::string pre = "blk." + std::to_string(l) + ".";
    const std::size_t qd = std::size_t(b.n_heads) * hs, kv = std::size_t(b.n_kv_heads) * hs;
    s.push_back({pre + "attn_q.weight", qd, dim, &b.wq});
    s.push_back({pre + "attn_k.weight", kv, dim, &b.wk});
    s.push_back({pre + "attn_v.weight", kv, dim, &b.wv});
    s.push_back({pre + "attn_output.weight", dim, qd, &b.wo});
    s.push_back({pre + "ffn_gate.weight", b.hidden, dim, &b.w1});
    s.push_back({pre + "ffn_down.weight", dim, b.hidden, &b.w2});
    s.push_back({pre + "ffn_up.weight", b.hidden, dim, &b.w3});
  }
  if (!p.tied) s.push_back({"output.weight", std::size_t(p.config.vocab_size), dim, &p.out});
  return s;
}
/// 64-bit FNV-1a of a name (keys A's random stream by tensor).
inline std::uint64_t lora_name_hash(const std::string& s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}
}  // namespace detail

template <class T>
class lora_set {
 public:
  lora_set() = default;

  /// Adapters for every adaptable tensor of `base` that `select` accepts (argument_error if
  /// none is selected).
  static lora_set create(const llama_params<T>& base, const lora_config& cfg, const lora_selector& select) {
    cfg.validate("lora_set::create");
    if (!select) detail::fail<argument_error>("lora_set::create: argument 'select': expected a selector, got an empty function");
    std::vector<std::string> names;
    for (const auto& s : detail::lora_slots(base))
      if (select(s.name)) names.push_back(s.name);
    if (names.empty())
      detail::fail<argument_error>("lora_set::create: argument 'select': expected a selection of at least one linear "
                                   "tensor, got none");
    return create(base, cfg, names);
  }

  /// Adapters for the named tensors (argument_error for a name that is not an adaptable
  /// linear tensor of `base`, a duplicate or an empty list).
  static lora_set create(const llama_params<T>& base, const lora_config& cfg, const std::vector<std::string>& names) {
    cfg.validate("lora_set::create");
    if (names.empty()) detail::fail<argument_error>("lora_set::create: argument 'names': expected at least one tensor name, got none");
    const auto slots = detail::lora_slots(base);
    lora_set s;
    s.cfg_ = cfg;
    for (const std::string& name : names) {
      const detail::lora_slot<T>* slot = nullptr;
      for (const auto& c : slots)
        if (c.name == name) slot = &c;
      if (!slot) {
        if (name == "output.weight" && base.tied)
          detail::fail<unsupported_error>("lora_set::create: tensor 'output.weight': the classifier is tied to the token "
                                          "embedding (not a linear tensor of the params); LoRA adapts linear tensors only");
        detail::fail<argument_error>("lora_set::create: argument 'names': expected a linear tensor name such as "
                                     "blk.0.attn_q.weight, got '", name, "'");
      }
      for (const auto& a : s.adapters_)
        if (a.name == name) detail::fail<argument_error>("lora_set::create: argument 'names': tensor '", name, "' listed twice");
      if (cfg.rank > std::min(slot->out, slot->in))
        detail::fail<argument_error>("lora_set::create: argument 'rank': expected 1 ≤ rank ≤ min(out, in) = ",
                                     std::min(slot->out, slot->in), " for tensor '", name, "' [", slot->out, ", ",
                                     slot->in, "], got ", cfg.rank);
      lora_adapter<T> a;
      a.name = name;
      a.out = slot->out;
      a.in = slot->in;
      a.rank = cfg.rank;
      a.scale = T(cfg.scale());
      a.a.resize(a.rank * a.in);
      const double bound = 1.0 / std::sqrt(double(a.in));
      const std::uint64_t key_seed = cfg.seed ^ detail::lora_name_hash(name);
      for (std::size_t k = 0; k < a.rank; ++k) {
        const std::uint32_t key = row_key(key_seed, k);
        for (std::size_t j = 0; j < a.in; ++j)
          a.a[k * a.in + j] = T((2.0 * double(counter_uniform(key, std::uint32_t(j))) - 1.0) * bound);
      }
      a.b.assign(a.out * a.rank, T(0));
      a.grad_a.assign(a.a.size(), T(0));
      a.grad_b.assign(a.b.size(), T(0));
      s.adapters_.push_back(std::move(a));
    }
    return s;
  }

  /// A set from given adapters (e.g. read back from a model's lora_linear layers):
  /// argument_error for none, a duplicate name, rank 0 or a scale not finite and > 0;
  /// shape_error when A, B or their gradients are not [rank, in], [out, rank].
  static lora_set from_adapters(const lora_config& cfg, std::vector<lora_adapter<T>> adapters) {
    cfg.validate("lora_set::from_adapters");
    if (adapters.empty()) detail::fail<argument_error>("lora_set::from_adapters: argument 'adapters': expected at least one, got none");
    for (std::size_t n = 0; n < adapters.size(); ++n) {
      lora_adapter<T>& a = adapters[n];
      for (std::size_t k = 0; k < n; ++k)
        if (adapters[k].name == a.name)
          detail::fail<argument_error>("lora_set::from_adapters: argument 'adapters': tensor '", a.name, "' listed twice");
      if (a.rank == 0 || a.rank > std::min(a.out, a.in))
        detail::fail<argument_error>("lora_set::from_adapters: adapter '", a.name, "': expected 1 ≤ rank ≤ min(out, in) = ",
                                     std::min(a.out, a.in), ", got ", a.rank);
      if (!(std::isfinite(double(a.scale)) && double(a.scale) > 0.0))
        detail::fail<argument_error>("lora_set::from_adapters: adapter '", a.name, "': expected a finite scale > 0, got ", a.scale);
      if (a.grad_a.empty()) a.grad_a.assign(a.a.size(), T(0));
      if (a.grad_b.empty()) a.grad_b.assign(a.b.size(), T(0));
      if (a.a.size() != a.rank * a.in || a.b.size() != a.out * a.rank || a.grad_a.size() != a.a.size() ||
          a.grad_b.size() != a.b.size())
        detail::fail<shape_error>("lora_set::from_adapters: adapter '", a.name, "': expected A [", a.rank, ", ", a.in,
                                  "] and B [", a.out, ", ", a.rank, "] (and gradients alike), got ", a.a.size(), " and ",
                                  a.b.size(), " values");
    }
    lora_set s;
    s.cfg_ = cfg;
    s.adapters_ = std::move(adapters);
    return s;
  }

  const lora_config& config() const noexcept { return cfg_; }
  std::size_t size() const noexcept { return adapters_.size(); }
  std::vector<lora_adapter<T>>& adapters() noexcept { return adapters_; }
  const std::vector<lora_adapter<T>>& adapters() const noexcept { return adapters_; }
  /// The adapter of tensor `name` (argument_error if there is none).
  const lora_adapter<T>& at(const std::string& name) const {
    for (const auto& a : adapters_)
      if (a.name == name) return a;
    detail::fail<argument_error>("lora_set::at: argument 'name': expected an adapted tensor, got '", name, "'");
  }
  lora_adapter<T>& at(const std::string& name) { return const_cast<lora_adapter<T>&>(std::as_const(*this).at(name)); }
  /// Trainable values: r·(in + out) per adapter.
  std::size_t parameter_count() const noexcept {
    std::size_t n = 0;
    for (const auto& a : adapters_) n += a.a.size() + a.b.size();
    return n;
  }

  /// Every trainable vector with its gradient: "<tensor>.lora_a", "<tensor>.lora_b".
  std::vector<lora_param<T>> parameters() {
    std::vector<lora_param<T>> p;
    for (auto& a : adapters_) {
      p.push_back({a.name + ".lora_a", &a.a, &a.grad_a});
      p.push_back({a.name + ".lora_b", &a.b, &a.grad_b});
    }
    return p;
  }

  /// Writes W_eff = W + s·B·A of every adapted tensor into `eff` (W from `base`); the
  /// other tensors of eff are not touched (start from eff = base). eff may be base itself
  /// only if applied once. shape_error if base or eff lacks an adapted tensor's shape.
  void apply(const llama_params<T>& base, llama_params<T>& eff) const {
    const auto bs = slots_of(base, "lora_set::apply: argument 'base'");
    const auto es = slots_of(eff, "lora_set::apply: argument 'eff'");
    for (std::size_t n = 0; n < adapters_.size(); ++n) {
      const lora_adapter<T>& a = adapters_[n];
      const std::vector<T>& w = *bs[n];
      std::vector<T>& e = *es[n];
      std::vector<T> row(a.in);
      for (std::size_t i = 0; i < a.out; ++i) {
        std::fill(row.begin(), row.end(), T(0));
        for (std::size_t k = 0; k < a.rank; ++k) {
          const T bik = a.b[i * a.rank + k];
          if (bik == T(0)) continue;
          const T* ak = a.a.data() + k * a.in;
          for (std::size_t j = 0; j < a.in; ++j) row[j] += bik * ak[j];
        }
        for (std::size_t j = 0; j < a.in; ++j) e[i * a.in + j] = w[i * a.in + j] + a.scale * row[j];
      }
    }
  }
  /// base with every adapted tensor replaced by W + s·B·A.
  llama_params<T> merged(const llama_params<T>& base) const {
    llama_params<T> eff = base;
    apply(base, eff);
    return eff;
  }

  /// From G = ∂L/∂W_eff in `grad` (loss_and_grad's output at W_eff), sets every adapter's
  /// grad_b = s·G·Aᵀ and grad_a = s·Bᵀ·G (overwriting; with `accumulate`, adding).
  void backward(const llama_params<T>& grad, bool accumulate = false) {
    const auto gs = slots_of(grad, "lora_set::backward: argument 'grad'");
    for (std::size_t n = 0; n < adapters_.size(); ++n) {
      lora_adapter<T>& a = adapters_[n];
      const std::vector<T>& g = *gs[n];
      if (!accumulate) {
        std::fill(a.grad_a.begin(), a.grad_a.end(), T(0));
        std::fill(a.grad_b.begin(), a.grad_b.end(), T(0));
      }
      for (std::size_t i = 0; i < a.out; ++i) {
        const T* gi = g.data() + i * a.in;
        for (std::size_t k = 0; k < a.rank; ++k) {
          const T* ak = a.a.data() + k * a.in;
          T dot = 0;
          for (std::size_t j = 0; j < a.in; ++j) dot += gi[j] * ak[j];
          a.grad_b[i * a.rank + k] += a.scale * dot;
          const T sb = a.scale * a.b[i * a.rank + k];
          if (sb == T(0)) continue;
          T* gak = a.grad_a.data() + k * a.in;
          for (std::size_t j = 0; j < a.in; ++j) gak[j] += sb * gi[j];
        }
      }
    }
  }

 private:
  /// The storage of each adapter's tensor in p, in adapter order; shape_error if missing.
  std::vector<const std::vector<T>*> slots_of(const llama_params<T>& p, const char* where) const {
    const auto slots = detail::lora_slots(p);
    std::vector<const std::vector<T>*> out;
    for (const auto& a : adapters_) {
      const detail::lora_slot<T>* s = nullptr;
      for (const auto& c : slots)
        if (c.name == a.name) s = &c;
      if (!s) detail::fail<shape_error>(where, ": expected a linear tensor '", a.name, "' [", a.out, ", ", a.in, "], got none");
      if (s->out != a.out || s->in != a.in || s->w->size() != a.out * a.in)
        detail::fail<shape_error>(where, ": tensor '", a.name, "': expected [", a.out, ", ", a.in, "] (", a.out * a.in,
                                  " values), got [", s->out, ", ", s->in, "] (", s->w->size(), " values)");
      out.push_back(s->w);
    }
    return out;
  }
  /// The same for params written to: the vectors are p's own (non-const) storage.
  std::vector<std::vector<T>*> slots_of(llama_params<T>& p, const char* where) const {
    const auto c = slots_of(std::as_const(p), where);
    std::vector<std::vector<T>*> out;
    for (const auto* v : c) out.push_back(const_cast<std::vector<T>*>(v));  // p is non-const here
    return out;
  }

  lora_config cfg_;
  std::vector<lora_adapter<T>> adapters_;
};

/// The adapters' A and B of `lora` as a parameter_set of external tensors (names
/// "<tensor>.lora_a", "<tensor>.lora_b"), for pare's optimizers and clipping; it refers to
/// lora's vectors, so lora must outlive it and keep its adapters.
inline parameter_set lora_parameter_set(lora_set<float>& lora) {
  std::vector<external_tensor> t;
  for (auto& p : lora.parameters()) t.push_back({p.name, p.value, p.grad});
  return parameter_set(t);
}

PARE_NAMESPACE_END
