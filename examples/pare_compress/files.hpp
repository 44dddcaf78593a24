// files: checks of the paths pare-compress reads and writes, made before any long work starts.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pare_compress {

/// A file the run reads or writes, as messages name it: `what` is the option ("--model")
/// or, for a default, what it is and how to change it ("tokenizer (default beside the
/// model; pass --tokenizer)").
struct named_path {
  std::string what, path;
};

/// usage_error "<what> '<path>': <why>" unless `f` is a regular file this process can open
/// for reading. FIFOs, devices and directories are refused from their type, never opened.
void require_readable_file(const named_path& f);

/// The whole file (require_readable_file first); usage_error with the system's reason.
std::string read_text_file(const named_path& f);

/// usage_error unless `out` can become the output: not a directory or other non-regular
/// file, in a folder that exists and is writable, and not the same file (device and inode,
/// so symbolic and hard links count) as any of `inputs`, which it would replace.
void require_writable_output(const named_path& out, const std::vector<named_path>& inputs);

}  // namespace pare_compress
