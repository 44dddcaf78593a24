// progress: pare-compress's progress on stderr: what runs, its percentage, and the time left for the row and the whole run.
#pragma once

// Work is counted in units, about one token through the model's forward pass; the run
// estimates each phase's units up front (run.cpp), the meter turns units done into
// percentages and times left from the rate measured so far. On a terminal one line is
// redrawn in place (at most ten times a second) and each finished row leaves one line;
// otherwise (CI logs, files) a plain line is printed each time the whole run passes
// another 10 %, so logs stay short.

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

#include "pare/core/progress.hpp"

namespace pare_compress {

class progress_meter {
 public:
  /// `total_units`: the whole run's estimate. `terminal`: redraw one line (stderr is a
  /// terminal) or print plain lines.
  progress_meter(double total_units, bool terminal, std::FILE* out = stderr);
  /// Clears the progress line (also when an exception unwinds past the meter).
  ~progress_meter();
  progress_meter(const progress_meter&) = delete;
  progress_meter& operator=(const progress_meter&) = delete;

  /// Row `index` (1-based) of `count`, named `name`, estimated at `units`.
  void begin_row(std::size_t index, std::size_t count, const std::string& name, double units);
  /// A phase of the current row ("perplexity", a recipe step) estimated at `units`.
  void begin_phase(const std::string& what, double units);
  /// Within the phase: `done` of `total` parts (windows, tensors) finished.
  void advance(std::size_t done, std::size_t total);
  /// The same, naming the part now running (a tensor).
  void advance(std::size_t done, std::size_t total, const std::string& part);
  /// A callback for pare functions that report progress: advance(done, total).
  pare::progress_callback callback();
  /// The phase is over: its estimate counts as done.
  void end_phase();
  /// The row is over; on a terminal `summary` stays as a line.
  void end_row(const std::string& summary);
  /// A line that stays (clears the progress line first).
  void note(const std::string& line);
  /// The run is over: a last line with the total time.
  void finish();

  /// "0:07", "12:40", "1:02:03".
  static std::string format_duration(double seconds);

 private:
  double elapsed() const;
  double done_units() const;
  void show(bool force);
  void clear();
  std::string status() const;

  double total_ = 0, done_ = 0;  // units of finished phases
  std::size_t row_index_ = 0, row_count_ = 0;
  std::string row_name_, phase_, part_;
  double row_units_ = 0, row_done_ = 0;        // the current row's estimate and finished phases
  double phase_units_ = 0, phase_fraction_ = 0;
  bool terminal_ = false;
  std::FILE* out_ = nullptr;
  std::size_t drawn_ = 0;                       // characters of the line on screen
  int next_decile_ = 0;                         // plain mode: the next 10 % to report (0: the start)
  std::chrono::steady_clock::time_point start_, row_start_, last_draw_;
};

/// True if stderr is a terminal (the meter then redraws one line).
bool stderr_is_terminal();

}  // namespace pare_compress
