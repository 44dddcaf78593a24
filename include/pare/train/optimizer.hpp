// optimizer: the interface of pare's first-order optimizers (a step over a parameter_set at a given learning rate, per-tensor state, step count).
#pragma once

// An optimizer keeps state per trainable tensor (named "<tensor>.<slot>", e.g.
// "blk.0.ffn_up.weight.exp_avg") and a count of steps taken. The learning rate is an
// argument of step(), so a schedule (lr_schedule) or any other rule drives it. State
// is created (zero) on the first step or by prepare(); its tensors are exposed by name
// so a checkpoint can save and restore them exactly.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/train/parameter_set.hpp"

PARE_NAMESPACE_BEGIN

class optimizer {
 public:
  virtual ~optimizer() = default;
  /// "adamw", "sgd", ... (checked when a checkpoint is loaded).
  virtual std::string kind() const = 0;
  /// The state slots kept per tensor (each the tensor's size), e.g. {"exp_avg", "exp_avg_sq"}.
  virtual std::vector<std::string> slots() const = 0;
  /// One update of ps's tensors from ps's gradients at learning rate lr (>= 0, finite).
  virtual void step(parameter_set& ps, double lr) = 0;

  /// Steps taken so far (restored by checkpoints).
  std::uint64_t steps() const noexcept { return steps_; }
  void set_steps(std::uint64_t s) noexcept { steps_ = s; }

  /// Creates zero state for ps's tensors unless state for exactly these tensors exists.
  void prepare(const parameter_set& ps) {
    const auto sl = slots();
    bool ok = names_ == ps.names() && state_.size() == ps.size() * sl.size();
    for (std::size_t i = 0; ok && i < ps.size(); ++i)
      for (std::size_t s = 0; s < sl.size(); ++s) ok = state_[i * sl.size() + s].size() == ps.value(i).size();
    if (ok) return;
    names_ = ps.names();
    state_.assign(ps.size() * sl.size(), {});
    for (std::size_t i = 0; i < ps.size(); ++i)
      for (std::size_t s = 0; s < sl.size(); ++s) state_[i * sl.size() + s].assign(ps.value(i).size(), 0.0f);
  }
  /// (name, storage) of every state tensor, "<tensor>.<slot>", tensors in set order.
  std::vector<std::pair<std::string, std::vector<float>*>> state() {
    const auto sl = slots();
    std::vector<std::pair<std::string, std::vector<float>*>> out;
    for (std::size_t i = 0; i < names_.size(); ++i)
      for (std::size_t s = 0; s < sl.size(); ++s) out.emplace_back(names_[i] + "." + sl[s], &state_[i * sl.size() + s]);
    return out;
  }
  /// Clears state and step count (a fresh optimizer).
  void reset() {
    names_.clear();
    state_.clear();
    steps_ = 0;
  }

 protected:
  /// Slot s of tensor i (after prepare()).
  std::vector<float>& slot(std::size_t i, std::size_t s) { return state_[i * slots_per_tensor_() + s]; }
  static void check_lr(const char* fn, double lr) {
    if (!(lr >= 0 && lr < 1e30))
      detail::fail<argument_error>(fn, ": argument 'lr': expected a finite learning rate >= 0, got ", lr);
  }

 private:
  std::size_t slots_per_tensor_() const { return names_.empty() ? 0 : state_.size() / names_.size(); }
  std::vector<std::string> names_;
  std::vector<std::vector<float>> state_;
  std::uint64_t steps_ = 0;
};

PARE_NAMESPACE_END
