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
#include <utility>
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
///
/// Protocol. A batch is open from the moment run() publishes its task and count (under
/// the pool's mutex) until run() closes it. A worker takes part only after joining the
/// open batch under that mutex, where it copies the task and count; it then claims
/// indices from the batch's counter and leaves (under the mutex) when the counter is
/// past the end. run() closes the batch, under the mutex, only once the counter is past
/// the end and no joined worker is left, so every claimed task has finished, no worker
/// can join late, and the counter is never reset while anyone still reads it.
///
/// Concurrency. run() may be called from any number of threads at once: their batches
/// run one after another (the pool holds one batch at a time). A run() made from inside
/// one of this pool's tasks runs its tasks inline on that thread (no deadlock). The
/// destructor must not overlap a run() on the same pool. If a task throws, the tasks not
/// yet started are skipped and run() rethrows the first exception once the batch is
/// closed.
class thread_pool final : public executor {
 public:
  /// More threads than this is refused (a typo such as --threads 100000 should not
  /// spend half a minute creating threads).
  static constexpr std::size_t max_threads = 1024;

  /// Starts `threads` - 1 workers (0 and 1 both mean: the caller alone). argument_error
  /// above max_threads; resource_error, with every started worker joined again, if the
  /// system refuses a thread.
  explicit thread_pool(std::size_t threads) : nthreads_(std::max<std::size_t>(1, threads)) {
    if (threads > max_threads)
      detail::fail<argument_error>("thread_pool: argument 'threads': expected at most ", max_threads, ", got ", threads);
    try {
      workers_.reserve(nthreads_ - 1);
      for (std::size_t i = 1; i < nthreads_; ++i) workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::exception& e) {
      const std::size_t started = workers_.size();
      shut_down();
      detail::fail<resource_error>("thread_pool: argument 'threads': the system refused worker thread ", started + 1,
                                   " of ", nthreads_ - 1, " (", e.what(), ")");
    }
  }
  ~thread_pool() override { shut_down(); }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  std::size_t concurrency() const noexcept override { return nthreads_; }

  void run(std::size_t ntasks, const std::function<void(std::size_t)>& task) override {
    if (ntasks == 0) return;
    if (nthreads_ == 1 || ntasks == 1 || running_pool() == this) {
      for (std::size_t i = 0; i < ntasks; ++i) task(i);
      return;
    }
    std::lock_guard<std::mutex> one_batch_at_a_time(run_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      task_ = &task;
      ntasks_ = ntasks;
      next_.store(0);
      error_ = nullptr;
      batch_.fetch_add(1);
    }
    cv_.notify_all();
    work(task, ntasks);
    // Every index is claimed; wait for the joined workers to leave, then close.
    spin_until([&] { return active_.load() == 0; });
    std::exception_ptr error;
    {
      std::unique_lock<std::mutex> lock(mu_);
      left_cv_.wait(lock, [&] { return active_.load() == 0; });
      task_ = nullptr;
      error = std::exchange(error_, nullptr);
    }
    if (error) std::rethrow_exception(error);
  }

 private:
  /// The pool whose task this thread is running (workers: their pool, always).
  static const thread_pool*& running_pool() noexcept {
    static thread_local const thread_pool* p = nullptr;
    return p;
  }

  /// Claims and runs indices of the open batch until none is left.
  void work(const std::function<void(std::size_t)>& task, std::size_t ntasks) {
    const thread_pool* const outer = std::exchange(running_pool(), this);
    for (std::size_t i = next_.fetch_add(1); i < ntasks; i = next_.fetch_add(1)) {
      try {
        task(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        next_.store(ntasks);  // skip the tasks not started yet
      }
    }
    running_pool() = outer;
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
    running_pool() = this;
    std::size_t seen = 0;
    for (;;) {
      spin_until([&] { return batch_.load() != seen || stop_.load(); });
      const std::function<void(std::size_t)>* task = nullptr;
      std::size_t ntasks = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_.load() || (batch_.load() != seen && task_ != nullptr); });
        if (stop_.load()) return;
        seen = batch_.load();
        task = task_;
        ntasks = ntasks_;
        active_.fetch_add(1);  // joined: the batch stays open until this worker leaves
      }
      work(*task, ntasks);
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_.fetch_sub(1);
      }
      left_cv_.notify_all();
    }
  }

  void shut_down() noexcept {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::size_t nthreads_;
  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_, left_cv_;
  // The open batch (task_ != nullptr): written by run() under mu_, copied by workers
  // under mu_ when they join.
  const std::function<void(std::size_t)>* task_ = nullptr;
  std::size_t ntasks_ = 0;
  std::exception_ptr error_;  // under mu_
  std::atomic<std::size_t> next_{0};
  // Written under mu_ (so the condition-variable waits miss no change), atomic so the
  // spinning waits can poll them without it.
  std::atomic<std::size_t> batch_{0}, active_{0};
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
