#!/usr/bin/env bash
# Builds and runs pare's main job, pare-compress, on the real stories260K model: cmake/run-main.sh [pare-compress arguments...]
#
# Run from the repository root with shared/ beside it, or set PARE_DATA_DIR to the data
# folder (models/stories260K.bin). PARE_BUILD_DIR defaults to build/main.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=cmake/install-deps.sh
source cmake/install-deps.sh
pare_install_deps

build_dir="${PARE_BUILD_DIR:-build/main}"
export PARE_DATA_DIR="${PARE_DATA_DIR:-$(cd "$root/.." && pwd)/shared/data}"
jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DPARE_BUILD_EXAMPLES=ON -DPARE_BUILD_TESTS=OFF \
      -DPARE_BUILD_BENCH=OFF -DPARE_DATA_DIR="$PARE_DATA_DIR"
cmake --build "$build_dir" -j"$jobs" --target pare-compress
exec "$build_dir/examples/pare-compress" "$@"
