// calibration_capture: fills a linear_input_stats (pare/stats/) per linear layer of a llama_model from the inputs a forward pass sees.
#pragma once

// Attach to a llama_session (session.set_observer(&capture)) and run calibration text
// through it; nothing of the activations is kept beyond the accumulators of
// pare/stats/linear_input_stats.hpp, one per layer (GGUF name). Options choose which
// accumulators run (XᵀX costs K² per row) and which layers. On ffn_down the
// non-positive counts are the per-neuron APoZ of the SwiGLU output.

#include <functional>
#include <map>
#include <string>
#include <utility>

#include "pare/core/error.hpp"
#include "pare/model/llama_session.hpp"
#include "pare/stats/linear_input_stats.hpp"
#include "pare/stats/observers/any_observer.hpp"

PARE_NAMESPACE_BEGIN

class calibration_capture final : public llama_session::linear_observer {
 public:
  struct options : linear_input_options {
    std::function<bool(const std::string&)> include;  ///< layers to capture (all if empty)
  };

  calibration_capture() : calibration_capture(options{}) {}
  explicit calibration_capture(options o) : opt_(std::move(o)) {
    if (!opt_.observer.empty()) (void)parse_observer(opt_.observer);  // validates the spec now
  }

  void on_linear_input(const std::string& name, const matrix_view<const float>& x) override {
    if (opt_.include && !opt_.include(name)) return;
    stats_[name].accumulate(x, opt_, name);
  }

  /// Statistics of layer `name`; argument_error if it was never seen.
  const linear_input_stats& at(const std::string& name) const {
    const auto it = stats_.find(name);
    if (it == stats_.end())
      detail::fail<argument_error>("calibration_capture::at: argument 'name': expected a captured layer, got '", name, "'");
    return it->second;
  }
  const std::map<std::string, linear_input_stats>& all() const noexcept { return stats_; }
  void clear() { stats_.clear(); }

 private:
  options opt_;
  std::map<std::string, linear_input_stats> stats_;
};

PARE_NAMESPACE_END
