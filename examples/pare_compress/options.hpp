// options: pare-compress's command line, parsed and checked for syntax with CLI11 (--help lists every option).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace pare_compress {

/// A problem with the command line or with a file it names, found by pare-compress itself
/// (problems the library finds are pare::error). main prints "pare-compress: <what>" and
/// exits with 1.
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The command line as given. Syntax is checked here (counts are digits in range, globs
/// are closed, --report is md or json, paths are not empty); what the values mean
/// together (files, recipes, output) is the plan's to check (plan.hpp).
struct options {
  std::string model, tokenizer, text, calib, out;  ///< empty: not given
  std::string plot;                                ///< --plot FILE.svg (empty: not given)
  std::string report = "md";                       ///< md | json
  std::vector<std::string> recipes;                ///< one report row each (steps comma-separated)
  std::vector<std::string> include, exclude;       ///< tensor-name globs (fnmatch)
  std::size_t threads = 0;                         ///< 0: PARE_NUM_THREADS or the machine's
  std::size_t max_tokens = 0;                      ///< 0: the whole text
  std::size_t window = 512;                        ///< the perplexity protocol's window
  std::size_t calib_windows = 128;                 ///< calibration windows (0: the whole --calib text)
  std::size_t calib_window = 0;                    ///< tokens per calibration window (0: --window)
  bool no_eval = false;                            ///< file mode (GGUF input)
  int sensitivity = -1;                            ///< -1: with the default table, 0 off, 1 on
};

/// The parsed command line, or `help` when --help / -h asked for the usage text (printed
/// to stdout already). usage_error naming the option, what it expects and what it got.
struct command_line {
  options opt;
  bool help = false;
};
command_line parse_command_line(int argc, const char* const* argv);

/// Why `glob` is not a pattern fnmatch takes as meant ("" if it is): empty, a '[' no ']'
/// closes, a trailing '\'.
std::string glob_problem(const std::string& glob);

}  // namespace pare_compress
