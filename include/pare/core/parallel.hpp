// pare::parallel_for over a built-in thread pool (PARE_NUM_THREADS) or an engine's own executor.
#pragma once

// Terms
// -----
// An `executor` runs `ntasks` independent tasks and returns when all have finished.
// pare owns one built-in `thread_pool` (created on first use with PARE_NUM_THREADS
// threads, default std::thread::hardware_concurrency()); an engine that has its own
// threads plugs them in with `set_executor(&mine)` and pare creates no threads at all.
// `parallel_for(begin, end, grain, f)` splits [begin, end) into chunks of at least
// `grain` indices and calls f(chunk_begin, chunk_end) for each. A call made from
// inside a task runs inline (no nested parallelism, no deadlock). If a task throws,
// the first exception is rethrown to the caller after every task has finished.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pare/core/error.hpp"

PARE_NAMESPACE_BEGIN

/// Something that can run a batch of independent tasks; implement it to give pare
/// an engine's threads.
class executor {
 public:
  virtual ~executor() = default;
  /// How many tasks can usefully run at once.
  virtual std::size_t concurrency() const noexcept = 0;
  /// Runs task(i) for every i in [0, ntasks) and returns when all are done. Must
  /// tolerate a task that throws (pare's wrapper catches inside the task).
  virtual void run(std::size_t ntasks, const std::function<void(std::size_t)>& task) = 0;
};

namespace detail {
inline thread_local bool inside_parallel_task = false;

inline std::size_t threads_from_env() {
  const char* env = std::getenv("PARE_NUM_THREADS");
  std::size_t hw = std::max<std::size_t>(1, std::thread::hardware_concurrency());
  if (env == nullptr || *env == '\0') return hw;
  char* end = nullptr;
  long v = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || v < 1 || v > 1024)
    fail<argument_error>("environment variable PARE_NUM_THREADS: expected an integer in [1, 1024], got '", env, "'");
  return static_cast<std::size_t>(v);
}
}  // namespace detail

/// A fixed-size pool of worker threads; the calling thread also works on each batch.
class thread_pool final : public executor {
 public:
  explicit thread_pool(std::size_t threads) : nthreads_(std::max<std::size_t>(1, threads)) {
    for (std::size_t i = 1; i < nthreads_; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  ~thread_pool() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  std::size_t concurrency() const noexcept override { return nthreads_; }

  void run(std::size_t ntasks, const std::function<void(std::size_t)>& task) override {
    if (ntasks == 0) return;
    if (nthreads_ == 1 || ntasks == 1) {
      for (std::size_t i = 0; i < ntasks; ++i) task(i);
      return;
    }
    std::lock_guard<std::mutex> one_batch_at_a_time(run_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      task_ = &task;
      ntasks_ = ntasks;
      next_.store(0);
      done_ = 0;
      ++batch_;
    }
    cv_.notify_all();
    work();
    spin_until([&] { return done_.load() == ntasks; });
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return done_ == ntasks_; });
    task_ = nullptr;
  }

 private:
  void work() {
    std::size_t finished = 0;
    for (;;) {
      std::size_t i = next_.fetch_add(1);
      if (i >= ntasks_) break;
      (*task_)(i);
      ++finished;
    }
    if (finished) {
      std::lock_guard<std::mutex> lock(mu_);
      done_ += finished;
      if (done_ == ntasks_) done_cv_.notify_all();
    }
  }
  /// Polls `ready` for up to spin_time (yielding the core between polls) before the
  /// caller falls back to sleeping on a condition variable: back-to-back batches (a
  /// model's matmuls) then start without a futex wake-up, which costs tens of
  /// microseconds on a virtual machine.
  template <class Ready>
  static void spin_until(Ready&& ready) {
    const auto until = std::chrono::steady_clock::now() + spin_time;
    for (unsigned i = 1; !ready(); ++i) {
      std::this_thread::yield();
      if (i % 16 == 0 && std::chrono::steady_clock::now() > until) return;
    }
  }
  static constexpr std::chrono::microseconds spin_time{200};

  void worker_loop() {
    std::size_t seen = 0;
    for (;;) {
      spin_until([&] { return batch_.load() != seen || stop_.load(); });
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || (batch_ != seen && task_ != nullptr); });
        if (stop_) return;
        seen = batch_;
      }
      work();
    }
  }

  std::size_t nthreads_;
  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(std::size_t)>* task_ = nullptr;
  std::size_t ntasks_ = 0;
  std::atomic<std::size_t> next_{0};
  // Written under mu_ (so the condition-variable waits miss no change), atomic so the
  // spinning waits can poll them without it.
  std::atomic<std::size_t> done_{0}, batch_{0};
  std::atomic<bool> stop_{false};
};

namespace detail {
inline std::atomic<executor*>& current_executor() noexcept {
  static std::atomic<executor*> e{nullptr};
  return e;
}
}  // namespace detail

/// pare's built-in pool (created on first use with PARE_NUM_THREADS threads).
inline thread_pool& default_thread_pool() {
  static thread_pool pool(detail::threads_from_env());
  return pool;
}

/// Routes pare's parallel work to `e` (not owned); nullptr restores the built-in pool.
inline void set_executor(executor* e) noexcept { detail::current_executor().store(e); }

/// The executor pare uses now.
inline executor& current_executor() {
  executor* e = detail::current_executor().load();
  return e ? *e : default_thread_pool();
}

/// How many tasks pare's parallel work is split into at most.
inline std::size_t num_threads() { return current_executor().concurrency(); }

/// Calls f(lo, hi) over chunks covering [begin, end), each at least `grain` long
/// (except the last), in parallel on the current executor. See the essay above.
template <class F>
void parallel_for(std::size_t begin, std::size_t end, std::size_t grain, F&& f) {
  if (end <= begin) return;
  grain = std::max<std::size_t>(1, grain);
  const std::size_t n = end - begin;
  if (detail::inside_parallel_task || n <= grain) {
    f(begin, end);
    return;
  }
  executor& ex = current_executor();
  const std::size_t max_chunks = (n + grain - 1) / grain;
  const std::size_t nchunks = std::min(max_chunks, std::max<std::size_t>(1, ex.concurrency()));
  if (nchunks <= 1) {
    f(begin, end);
    return;
  }
  const std::size_t per = n / nchunks, extra = n % nchunks;
  std::exception_ptr first_error;
  std::mutex err_mu;
  ex.run(nchunks, [&](std::size_t c) {
    const std::size_t lo = begin + c * per + std::min(c, extra);
    const std::size_t hi = lo + per + (c < extra ? 1 : 0);
    const bool was_inside = detail::inside_parallel_task;
    detail::inside_parallel_task = true;
    try {
      f(lo, hi);
    } catch (...) {
      std::lock_guard<std::mutex> lock(err_mu);
      if (!first_error) first_error = std::current_exception();
    }
    detail::inside_parallel_task = was_inside;
  });
  if (first_error) std::rethrow_exception(first_error);
}

PARE_NAMESPACE_END
