// parameter_set: the tensors of a llama_params<float> that train (chosen by name), their gradient buffers, and the frozen rest.
#pragma once

// A parameter_set refers to a llama_params<float> (which must outlive it and keep its
// shapes) and owns one gradient buffer of the same shapes. Tensor i of the set is the
// i-th trainable tensor in llama_params::named() order:
//
//   pare::parameter_set ps(params, pare::name_contains("ffn_"));   // FFN weights train
//   pare::loss_and_grad(params, window, &ps.gradients());          // all gradients
//   opt.step(ps, lr);                                              // only the set's tensors move
//
// Gradients of frozen tensors are computed by the backward pass like any other (the
// buffer holds every tensor) but no optimizer, clipping or norm reads them.
//
// A set can also hold tensors that live outside any llama_params (LoRA adapters:
// pare::lora_parameter_set in pare/train/lora.hpp): optimizers, clipping and norms step
// them the same way; params(), gradients(), accumulate_gradients and checkpoints need a
// llama_params and refuse such a set with unsupported_error.

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/model/llama_grad.hpp"

PARE_NAMESPACE_BEGIN

/// Chooses trainable tensors by their GGUF name.
using tensor_predicate = std::function<bool(const std::string& name)>;

/// Every tensor trains.
inline tensor_predicate all_tensors() {
  return [](const std::string&) { return true; };
}
/// Tensors whose name contains `part` train (e.g. "ffn_", "blk.3.", "norm").
inline tensor_predicate name_contains(std::string part) {
  return [part = std::move(part)](const std::string& n) { return n.find(part) != std::string::npos; };
}

/// A trainable tensor held elsewhere: its values and its gradient (same size).
struct external_tensor {
  std::string name;
  std::vector<float>* value = nullptr;
  std::vector<float>* grad = nullptr;
};

class parameter_set {
 public:
  /// The tensors of `params` for which `trainable(name)` holds. argument_error if none
  /// does (a set that trains nothing is almost certainly a typo in the predicate).
  parameter_set(llama_params<float>& params, const tensor_predicate& trainable)
      : params_(&params), grads_(params.zeros_like()) {
    auto pn = params.named();
    auto gn = grads_.named();
    for (std::size_t i = 0; i < pn.size(); ++i)
      if (trainable(pn[i].first)) {
        names_.push_back(pn[i].first);
        values_.push_back(pn[i].second);
        grad_ptrs_.push_back(gn[i].second);
        count_ += pn[i].second->size();
      }
    if (names_.empty())
      detail::fail<argument_error>("parameter_set: argument 'trainable': expected a predicate selecting at least one of ",
                                   pn.size(), " tensors, got one selecting none");
  }
  /// The given tensors, none of them in a llama_params. argument_error (nothing kept) for
  /// an empty list, a null pointer, a gradient of another size than its values, or a name
  /// that repeats.
  explicit parameter_set(const std::vector<external_tensor>& tensors) {
    if (tensors.empty())
      detail::fail<argument_error>("parameter_set: argument 'tensors': expected at least one tensor, got none");
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const external_tensor& t = tensors[i];
      if (t.value == nullptr || t.grad == nullptr)
        detail::fail<argument_error>("parameter_set: argument 'tensors': tensor ", i, " ('", t.name,
                                     "') expected non-null value and grad pointers, got a null one");
      if (t.value->size() != t.grad->size())
        detail::fail<argument_error>("parameter_set: argument 'tensors': tensor '", t.name, "' expected a gradient of ",
                                     t.value->size(), " values, got ", t.grad->size());
      for (std::size_t j = 0; j < i; ++j)
        if (tensors[j].name == t.name)
          detail::fail<argument_error>("parameter_set: argument 'tensors': expected distinct names, got '", t.name,
                                       "' twice");
    }
    for (const external_tensor& t : tensors) {
      names_.push_back(t.name);
      values_.push_back(t.value);
      grad_ptrs_.push_back(t.grad);
      count_ += t.value->size();
    }
  }
  parameter_set(const parameter_set&) = delete;  // holds pointers into its own gradient buffer
  parameter_set& operator=(const parameter_set&) = delete;

  /// Trainable tensors.
  std::size_t size() const noexcept { return names_.size(); }
  /// Trainable scalars.
  std::size_t count() const noexcept { return count_; }
  const std::string& name(std::size_t i) const { return names_.at(i); }
  const std::vector<std::string>& names() const noexcept { return names_; }
  bool contains(const std::string& name) const {
    for (const auto& n : names_)
      if (n == name) return true;
    return false;
  }
  /// Tensor i's values (in the parameters) and gradient (in the buffer).
  std::vector<float>& value(std::size_t i) { return *values_.at(i); }
  const std::vector<float>& value(std::size_t i) const { return *values_.at(i); }
  std::vector<float>& grad(std::size_t i) { return *grad_ptrs_.at(i); }
  const std::vector<float>& grad(std::size_t i) const { return *grad_ptrs_.at(i); }

  /// True when the set's tensors live in a llama_params (the first constructor).
  bool has_params() const noexcept { return params_ != nullptr; }
  /// All parameters (trainable and frozen). unsupported_error for a set of external tensors.
  llama_params<float>& params() { return *check_params("params"); }
  const llama_params<float>& params() const { return *check_params("params"); }
  /// The gradient buffer: every tensor, p's shapes. Pass &gradients() to loss_and_grad;
  /// do not assign a llama_params of other shapes to it. unsupported_error for a set of
  /// external tensors.
  llama_params<float>& gradients() {
    check_params("gradients");
    return grads_;
  }

  /// Zeros every gradient (trainable and frozen; an external set's own gradients).
  void zero_grad() {
    if (params_ == nullptr) {
      for (auto* g : grad_ptrs_) std::fill(g->begin(), g->end(), 0.0f);
      return;
    }
    for (auto& [n, v] : grads_.named()) std::fill(v->begin(), v->end(), 0.0f);
  }
  /// Multiplies the trainable gradients by s.
  void scale_grad(float s) {
    for (auto* g : grad_ptrs_)
      for (float& x : *g) x *= s;
  }

 private:
  llama_params<float>* check_params(const char* what) const {
    if (params_ == nullptr)
      detail::fail<unsupported_error>("parameter_set::", what,
                                      ": this set holds external tensors (e.g. LoRA adapters), not a llama_params");
    return params_;
  }

  llama_params<float>* params_ = nullptr;
  llama_params<float> grads_;
  std::vector<std::string> names_;
  std::vector<std::vector<float>*> values_, grad_ptrs_;
  std::size_t count_ = 0;
};

PARE_NAMESPACE_END
