// files: pare-compress's up-front checks of input and output paths (regular, readable, writable, not the input).
#include "files.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/stat.h>
#include <unistd.h>

#include "options.hpp"
#include "pare/io/mapped_file.hpp"

namespace pare_compress {
namespace {

[[noreturn]] void refuse(const named_path& f, const std::string& why) {
  throw usage_error(f.what + " '" + f.path + "': " + why);
}

}  // namespace

void require_readable_file(const named_path& f) {
  const std::string why = pare::unreadable_file_reason(f.path);
  if (!why.empty()) refuse(f, why);
}

std::string read_text_file(const named_path& f) {
  require_readable_file(f);
  std::ifstream in(f.path, std::ios::binary);
  if (!in) refuse(f, std::string("cannot open for reading: ") + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) refuse(f, std::string("read error: ") + std::strerror(errno));
  return s.str();
}

void require_writable_output(const named_path& out, const std::vector<named_path>& inputs) {
  struct stat o {};
  if (::stat(out.path.c_str(), &o) == 0) {
    if (S_ISDIR(o.st_mode)) refuse(out, "expected a file path, got a directory");
    if (!S_ISREG(o.st_mode))
      refuse(out, "expected a regular file or a new path, got a special file (FIFO, socket or device)");
    for (const named_path& in : inputs) {
      struct stat i {};
      if (!in.path.empty() && ::stat(in.path.c_str(), &i) == 0 && i.st_dev == o.st_dev && i.st_ino == o.st_ino)
        refuse(out, "expected a new path or another file, got the same file as " + in.what + " '" + in.path +
                        "' (writing would replace it)");
    }
  } else if (errno != ENOENT) {
    refuse(out, std::string("cannot check the path: ") + std::strerror(errno));
  }
  std::filesystem::path dir = std::filesystem::path(out.path).parent_path();
  if (dir.empty()) dir = ".";
  struct stat d {};
  if (::stat(dir.c_str(), &d) != 0)
    refuse(out, "its folder '" + dir.string() + "' cannot be used: " + std::strerror(errno));
  if (!S_ISDIR(d.st_mode)) refuse(out, "its folder '" + dir.string() + "' is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    refuse(out, "its folder '" + dir.string() + "' is not writable: " + std::strerror(errno));
}

}  // namespace pare_compress
