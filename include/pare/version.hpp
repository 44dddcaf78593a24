// pare version numbers; CMake parses PARE_VERSION_MAJOR/MINOR/PATCH from this file.
#pragma once

#define PARE_VERSION_MAJOR 0
#define PARE_VERSION_MINOR 1
#define PARE_VERSION_PATCH 0

#define PARE_VERSION_STRING "0.1.0"

namespace pare {
inline namespace v0 {
/// The library version as "MAJOR.MINOR.PATCH".
inline constexpr const char* version_string = PARE_VERSION_STRING;
}  // namespace v0
}  // namespace pare
