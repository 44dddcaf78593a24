// Tests of mapped_file (mmap and read fallback) and atomic_file (temporary + rename, nothing left on failure).
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "pare/io/atomic_file.hpp"
#include "pare/io/mapped_file.hpp"

namespace fs = std::filesystem;

namespace {
fs::path scratch_dir() {
  const fs::path d = fs::temp_directory_path() / ("pare_test_files_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}
std::size_t files_in(const fs::path& d) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(d)) n += e.is_regular_file();
  return n;
}
}  // namespace

TEST_CASE("atomic_file writes through a temporary and leaves the destination untouched on failure") {
  const fs::path d = scratch_dir();
  const std::string path = (d / "out.bin").string();
  {
    pare::atomic_file f(path);
    f.write("abc", 3);
    f.pad(5);
    CHECK(f.offset() == 8);
    CHECK_FALSE(fs::exists(path));  // not visible before commit
    f.commit();
  }
  REQUIRE(fs::file_size(path) == 8);
  try {
    pare::atomic_file f(path);
    f.write("zzzzzzzzzzzz", 12);
    throw std::runtime_error("fails before commit");
  } catch (const std::runtime_error&) {
  }
  CHECK(fs::file_size(path) == 8);  // old content intact
  CHECK(files_in(d) == 1);          // temporary removed
  CHECK_THROWS_AS(pare::atomic_file((d / "no" / "such" / "dir.bin").string()), pare::io_error);
  fs::remove_all(d);
}

TEST_CASE("mapped_file maps or reads the same bytes, errors name the path") {
  const fs::path d = scratch_dir();
  const std::string path = (d / "data.bin").string();
  std::vector<std::uint8_t> bytes(10000);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7 + 3);
  {
    pare::atomic_file f(path);
    f.write(bytes.data(), bytes.size());
    f.commit();
  }
  for (bool use_mmap : {true, false}) {
    const pare::mapped_file m = pare::mapped_file::open(path, use_mmap);
    REQUIRE(m.size() == bytes.size());
    CHECK(std::memcmp(m.data(), bytes.data(), bytes.size()) == 0);
    if (!use_mmap) CHECK_FALSE(m.is_mapped());
  }
  pare::mapped_file a = pare::mapped_file::from_bytes(bytes);
  const std::uint8_t* p = a.data();
  pare::mapped_file b = std::move(a);  // moves keep the same bytes
  CHECK(b.data() == p);
  CHECK(a.size() == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
  CHECK_THROWS_WITH(pare::mapped_file::open((d / "missing.bin").string()), Catch::Contains("missing.bin"));
  CHECK_THROWS_AS(pare::mapped_file::open(d.string()), pare::io_error);  // a directory
  fs::remove_all(d);
}
