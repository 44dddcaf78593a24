// Shared helpers of the file-format tests: stories260K.bin's size, a self-removing temporary folder, an exception's message.
#pragma once

#include <cstddef>
#include <exception>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include <catch2/catch.hpp>

namespace io_test {

/// Bytes of models/stories260K.bin (data/README.md).
inline constexpr std::size_t stories_bytes = 1056540;

/// A fresh folder under the system temp directory, removed at scope exit.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("pare_test_io_" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  /// The path of `name` inside the folder.
  std::string at(const std::string& name) const { return (path / name).string(); }
  /// Writes `bytes` to `name` inside the folder; its path.
  std::string write(const std::string& name, const std::vector<char>& bytes) const {
    const std::string p = at(name);
    std::ofstream f(p, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(f.good());
    return p;
  }
  /// How many entries the folder holds.
  std::size_t entries() const {
    std::size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(path); it != std::filesystem::directory_iterator(); ++it) ++n;
    return n;
  }
};

/// The message of the E thrown by f (fails the test if f throws nothing or something else).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("threw the wrong exception type: " << e.what());
  }
  FAIL("threw nothing");
  return {};
}

}  // namespace io_test
