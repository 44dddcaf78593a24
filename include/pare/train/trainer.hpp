// train(): the training loop over the pieces of train/ — windows from a sampler, a pluggable window loss, accumulation, clipping, a schedule, an optimizer, checkpoints, progress.
#pragma once

// One step s (s = opt.steps(), counting from wherever a checkpoint left off):
//
//   windows ← the next `accumulation` windows of `data`
//   loss    ← accumulate_gradients(ps, windows, loss_fn)     (gradient of the mean loss)
//   norm    ← clip_grad_norm(ps, max_grad_norm)  (or grad_norm when clipping is off)
//   opt.step(ps, schedule.at(s))
//   every checkpoint_every steps (and after the last): save_checkpoint(...)
//   progress({step s + 1, total, loss, lr, norm, tokens/s, ETA})
//
// until opt.steps() == options.steps. Deterministic: the same parameters, seed, options
// and loss give the same bits for any thread count (the model's passes and every piece
// here are); a run resumed from a checkpoint continues bit-identically.

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/train/checkpoint.hpp"
#include "pare/train/grad_clip.hpp"
#include "pare/train/lr_schedule.hpp"
#include "pare/train/optimizer.hpp"
#include "pare/train/parameter_set.hpp"
#include "pare/train/window_loss.hpp"
#include "pare/train/window_sampler.hpp"

PARE_NAMESPACE_BEGIN

struct train_options {
  std::size_t steps = 100;           ///< optimizer steps of the whole run (a resumed run stops there too)
  std::size_t accumulation = 1;      ///< windows per step (>= 1)
  double max_grad_norm = 0;          ///< global-norm clipping threshold; 0: off
  lr_schedule schedule;              ///< learning rate per step
  std::string checkpoint_path;       ///< empty: no checkpoints
  std::size_t checkpoint_every = 0;  ///< steps between checkpoints (0: only after the last step)
};

struct train_progress {
  std::size_t step = 0, steps = 0;  ///< steps done (this one included), of the run's total
  double loss = 0;                  ///< mean window loss of this step (before the update)
  double lr = 0;                    ///< learning rate used
  double grad_norm = 0;             ///< trainable gradient norm before clipping
  double tokens_per_s = 0;          ///< predicted tokens per second over this call so far
  double eta_s = 0;                 ///< seconds left at that rate
};
using train_progress_fn = std::function<void(const train_progress&)>;

struct train_result {
  std::size_t steps_run = 0;  ///< steps taken by this call
  double first_loss = 0, last_loss = 0;
  double tokens_per_s = 0;
};

/// Runs the loop above. argument_error (nothing changed) for accumulation 0, a bad
/// schedule, a negative/NaN clipping threshold or an empty loss.
inline train_result train(parameter_set& ps, optimizer& opt, window_sampler& data, const train_options& o,
                          const window_loss& loss_fn, const train_progress_fn& progress = {}) {
  using detail::fail;
  if (o.accumulation < 1) fail<argument_error>("train: argument 'accumulation': expected >= 1 windows per step, got 0");
  if (!(o.max_grad_norm >= 0 && std::isfinite(o.max_grad_norm)))
    fail<argument_error>("train: argument 'max_grad_norm': expected a finite value >= 0 (0: off), got ", o.max_grad_norm);
  if (!loss_fn) fail<argument_error>("train: argument 'loss_fn': expected a function, got an empty one");
  o.schedule.validate();
  train_result res;
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t tokens = 0;
  std::vector<std::vector<std::int32_t>> windows(o.accumulation);
  while (opt.steps() < o.steps) {
    const std::size_t s = static_cast<std::size_t>(opt.steps());
    for (auto& w : windows) {
      w = data.next();
      tokens += w.size() - 1;
    }
    const double loss = accumulate_gradients(ps, windows, loss_fn);
    const double norm = o.max_grad_norm > 0 ? clip_grad_norm(ps, o.max_grad_norm) : grad_norm(ps);
    const double lr = o.schedule.at(s);
    opt.step(ps, lr);
    if (res.steps_run == 0) res.first_loss = loss;
    res.last_loss = loss;
    ++res.steps_run;
    const bool last = opt.steps() == o.steps;
    if (!o.checkpoint_path.empty() && (last || (o.checkpoint_every && opt.steps() % o.checkpoint_every == 0)))
      save_checkpoint(o.checkpoint_path, ps, opt, data);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.tokens_per_s = secs > 0 ? double(tokens) / secs : 0;
    if (progress) {
      train_progress p;
      p.step = s + 1;
      p.steps = o.steps;
      p.loss = loss;
      p.lr = lr;
      p.grad_norm = norm;
      p.tokens_per_s = res.tokens_per_s;
      p.eta_s = secs / double(res.steps_run) * double(o.steps - opt.steps());
      progress(p);
    }
  }
  return res;
}

PARE_NAMESPACE_END
