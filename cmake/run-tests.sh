#!/usr/bin/env bash
# Builds pare's tests and runs them all with ctest: cmake/run-tests.sh from the repository root (shared/ beside it).
#
# Environment (all optional): PARE_BUILD_DIR (default build/tests), PARE_BUILD_TYPE (Release),
# PARE_BUILD_TYPE_FLAGS (the build type's compiler flags instead of CMake's, e.g. "-O1 -g1 -DNDEBUG"),
# PARE_CMAKE_ARGS (extra configure arguments), PARE_CTEST_ARGS (extra ctest arguments),
# PARE_BUILD_TARGETS (build only these targets, space-separated; default all),
# PARE_DATA_DIR (the data folder, default ../shared/data).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=cmake/install-deps.sh
source cmake/install-deps.sh
pare_install_deps

build_dir="${PARE_BUILD_DIR:-build/tests}"
build_type="${PARE_BUILD_TYPE:-Release}"
jobs="$(nproc 2>/dev/null || echo 2)"
type_flags=()
if [ -n "${PARE_BUILD_TYPE_FLAGS:-}" ]; then
  type_flags=("-DCMAKE_CXX_FLAGS_${build_type^^}=${PARE_BUILD_TYPE_FLAGS}")
fi
# shellcheck disable=SC2086  # PARE_CMAKE_ARGS / PARE_CTEST_ARGS are word lists
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" "${type_flags[@]}" ${PARE_CMAKE_ARGS:-}
if [ -n "${PARE_BUILD_TARGETS:-}" ]; then
  # shellcheck disable=SC2086  # a word list
  cmake --build "$build_dir" -j"$jobs" --target ${PARE_BUILD_TARGETS}
else
  cmake --build "$build_dir" -j"$jobs"
fi
cd "$build_dir"
# shellcheck disable=SC2086
ctest --output-on-failure -j2 ${PARE_CTEST_ARGS:-}
