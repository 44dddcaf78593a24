// progress: the stderr progress line of pare-compress (redrawn on a terminal, a line per 10 % otherwise) with ETAs.
#include "progress.hpp"

#include <algorithm>
#include <cmath>

#include <sys/ioctl.h>
#include <unistd.h>

namespace pare_compress {
namespace {

/// Columns of the terminal on stderr (80 if unknown).
std::size_t terminal_width() {
  struct winsize w {};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
  return 80;
}

}  // namespace

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

progress_meter::progress_meter(double total_units, bool terminal, std::FILE* out)
    : total_(std::max(total_units, 1.0)), terminal_(terminal), out_(out) {
  start_ = row_start_ = last_draw_ = std::chrono::steady_clock::now();
}

progress_meter::~progress_meter() { clear(); }

std::string progress_meter::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = std::lround(s);
  char b[32];
  if (t >= 3600)
    std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(b, sizeof b, "%ld:%02ld", t / 60, t % 60);
  return b;
}

double progress_meter::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double progress_meter::done_units() const { return std::min(done_ + phase_units_ * phase_fraction_, total_); }

void progress_meter::begin_row(std::size_t index, std::size_t count, const std::string& name, double units) {
  row_index_ = index;
  row_count_ = count;
  row_name_ = name;
  row_units_ = units;
  row_done_ = 0;
  phase_.clear();
  phase_units_ = phase_fraction_ = 0;
  row_start_ = std::chrono::steady_clock::now();
  show(true);
}

void progress_meter::begin_phase(const std::string& what, double units) {
  phase_ = what;
  part_.clear();
  phase_units_ = units;
  phase_fraction_ = 0;
  show(true);
}

void progress_meter::advance(std::size_t done, std::size_t total) {
  phase_fraction_ = total ? std::min(1.0, double(done) / double(total)) : 1.0;
  show(false);
}

void progress_meter::advance(std::size_t done, std::size_t total, const std::string& part) {
  part_ = part;
  advance(done, total);
}

pare::progress_callback progress_meter::callback() {
  return [this](std::size_t done, std::size_t total) { advance(done, total); };
}

void progress_meter::end_phase() {
  done_ += phase_units_;
  row_done_ += phase_units_;
  phase_units_ = phase_fraction_ = 0;
  phase_.clear();
  part_.clear();
  show(false);
}

void progress_meter::end_row(const std::string& summary) {
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - row_start_).count();
  if (terminal_) {
    char head[32];
    std::snprintf(head, sizeof head, "[%zu/%zu] ", row_index_, row_count_);
    note(head + summary + " (" + format_duration(took) + ")");
  }
  phase_.clear();
}

void progress_meter::note(const std::string& line) {
  clear();
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
  show(true);
}

void progress_meter::finish() {
  clear();
  std::fprintf(out_, "pare-compress: done in %s\n", format_duration(elapsed()).c_str());
  std::fflush(out_);
  row_count_ = 0;  // nothing more to draw
}

std::string progress_meter::status() const {
  const double t = elapsed(), done = done_units();
  const double rate = done > 0 ? t / done : 0;  // seconds per unit so far
  const auto left = [&](double units) {
    return done > 0 && t > 1 ? "~" + format_duration(units * rate) : std::string("?");
  };
  // The whole run first (a narrow terminal cuts the end of the line), then the row.
  std::string s = std::to_string(int(100 * done / total_)) + "% after " + format_duration(t) + ", " +
                  left(total_ - done) + " left | row " + std::to_string(row_index_) + "/" + std::to_string(row_count_) +
                  " " + row_name_;
  if (!phase_.empty()) {
    s += ": " + phase_;
    if (phase_fraction_ > 0) s += " " + std::to_string(int(100 * phase_fraction_)) + "%";
    if (!part_.empty()) s += " (" + part_ + ")";
  }
  const double row_left = std::max(0.0, row_units_ - row_done_ - phase_units_ * phase_fraction_);
  return s + ", " + left(row_left) + " left in the row";
}

void progress_meter::show(bool force) {
  if (row_count_ == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (terminal_) {
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::string s = status();
    const std::size_t width = terminal_width() - 1;  // the last column would wrap
    if (s.size() > width) s.resize(width);
    const std::size_t drawn = s.size();
    if (drawn < drawn_) s.append(drawn_ - drawn, ' ');  // blank the rest of the previous line
    std::fprintf(out_, "\r%s", s.c_str());
    if (drawn < drawn_) std::fprintf(out_, "\r%s", s.substr(0, drawn).c_str());
    std::fflush(out_);
    drawn_ = drawn;
    return;
  }
  // Plain lines: one each time the whole run passes another 10 %.
  const int decile = int(10 * done_units() / total_);
  if (decile < next_decile_) return;
  next_decile_ = decile + 1;
  std::fprintf(out_, "pare-compress: %s\n", status().c_str());
  std::fflush(out_);
}

void progress_meter::clear() {
  if (!terminal_ || drawn_ == 0) return;
  std::fprintf(out_, "\r%s\r", std::string(drawn_, ' ').c_str());
  std::fflush(out_);
  drawn_ = 0;
}

}  // namespace pare_compress
