#!/usr/bin/env bash
# Cross-builds pare's kernel tests for aarch64 and runs them under qemu-aarch64, with and without the dot-product extension.
#
# Usage: cmake/run-aarch64-tests.sh [build-dir]        (default: build/aarch64 in the repository)
#
# Programs (each with tests/main.cpp): test_kernels (tests/kernels/test_*.cpp: the row
# kernels, NEON against the scalar reference), test_matmul_neon (tests/matmul/test_neon.cpp)
# and test_matmul_int_matmul (tests/matmul/test_int_matmul.cpp), plus a probe that prints the
# ISA levels pare detects. The matmul programs run once per CPU of PARE_AARCH64_CPUS
# (default "max cortex-a72": an Armv8 CPU with every extension qemu has, SDOT included, and
# one without dotprod, so both the neon_dot and the plain neon variants run); test_kernels
# runs on the first CPU only (the row kernels have one NEON variant, dotprod or not).
#
# Needs (Debian): g++-aarch64-linux-gnu, qemu-user or qemu-user-static, and the headers of the
# header-only dependencies on the host (catch2, libxtensor-dev, xtl-dev, nlohmann-json3-dev);
# they are found after the cross compiler's own system headers (-idirafter /usr/include).
# Programs are linked statically, so qemu needs no aarch64 sysroot. They are rebuilt only when
# a source or header they read changed (compiler depfiles).
#
# Environment (optional): PARE_AARCH64_CXX (default aarch64-linux-gnu-g++), PARE_QEMU_AARCH64
# (default qemu-aarch64, else qemu-aarch64-static), PARE_AARCH64_CPUS, PARE_WERROR=ON (add
# -Werror), PARE_DATA_DIR.
#
# Exit status: 0 when every program passed on every CPU; 77 when the cross compiler, qemu or
# the Catch2 header is missing (nothing was run: ctest's SKIP_RETURN_CODE); 1 otherwise.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build/aarch64}"
cxx="${PARE_AARCH64_CXX:-aarch64-linux-gnu-g++}"
qemu="${PARE_QEMU_AARCH64:-}"
if [ -z "$qemu" ]; then
  for q in qemu-aarch64 qemu-aarch64-static; do
    if command -v "$q" >/dev/null 2>&1; then qemu="$q"; break; fi
  done
fi
cpus="${PARE_AARCH64_CPUS:-max cortex-a72}"

skip() {
  echo "aarch64 tests skipped: $1" >&2
  exit 77
}
command -v "$cxx" >/dev/null 2>&1 || skip "no cross compiler '$cxx' (Debian: g++-aarch64-linux-gnu)"
if [ -z "$qemu" ] || ! command -v "$qemu" >/dev/null 2>&1; then
  skip "no qemu-aarch64 (Debian: qemu-user or qemu-user-static)"
fi
[ -f /usr/include/catch2/catch.hpp ] || skip "no /usr/include/catch2/catch.hpp (Debian: catch2)"

mkdir -p "$build" || exit 1
data_dir="${PARE_DATA_DIR:-$root/../shared/data}"
flags=(-std=c++17 -O2 -Wall -Wextra -Wpedantic -pthread -I"$root/include" -I"$root/tests" -idirafter /usr/include
       "-DPARE_DATA_DIR_DEFAULT=\"$data_dir\"")
[ "${PARE_WERROR:-}" = ON ] && flags+=(-Werror)

# build OUT SOURCE...: compiles and links OUT statically unless it is newer than every file
# its depfile lists and than this script's flags (kept in OUT.flags).
build() {
  local out="$1"
  shift
  local dep="$out.d" stamp="$out.flags" f
  local want="$cxx ${flags[*]} $*"
  if [ -x "$out" ] && [ -f "$dep" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    local stale=0
    # shellcheck disable=SC2013  # a depfile lists paths separated by blanks and line continuations
    for f in $(sed -e 's/\\$//' -e 's/^[^:]*://' "$dep"); do
      if [ "$f" -nt "$out" ]; then stale=1; break; fi
    done
    [ $stale -eq 0 ] && return 0
  fi
  echo "building $(basename "$out")"
  rm -f "$stamp"
  "$cxx" "${flags[@]}" -MMD -MF "$dep" -MT "$out" "$@" -static -o "$out.tmp" || return 1
  mv "$out.tmp" "$out" && echo "$want" >"$stamp"
}

cat >"$build/isa_probe.cpp.new" <<'EOF'
// Prints the ISA levels pare detects on this CPU (the aarch64 test script runs it first under each qemu CPU).
#include <cstdio>

#include "pare/core/isa.hpp"

int main() {
  pare::for_each_isa(pare::detected_isas(), [](pare::isa level) { std::printf(" %s", pare::to_string(level)); });
  std::printf("\n");
}
EOF
if cmp -s "$build/isa_probe.cpp.new" "$build/isa_probe.cpp"; then
  rm -f "$build/isa_probe.cpp.new"
else
  mv "$build/isa_probe.cpp.new" "$build/isa_probe.cpp"
fi

programs=(test_kernels test_matmul_neon test_matmul_int_matmul)
kernel_sources=("$root"/tests/kernels/test_*.cpp)
pids=()
build "$build/isa_probe" "$build/isa_probe.cpp" >"$build/isa_probe.log" 2>&1 &
pids+=($!)
build "$build/test_kernels" "$root/tests/main.cpp" "${kernel_sources[@]}" >"$build/test_kernels.log" 2>&1 &
pids+=($!)
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
pids=()
build "$build/test_matmul_neon" "$root/tests/main.cpp" "$root/tests/matmul/test_neon.cpp" \
  >"$build/test_matmul_neon.log" 2>&1 &
pids+=($!)
build "$build/test_matmul_int_matmul" "$root/tests/main.cpp" "$root/tests/matmul/test_int_matmul.cpp" \
  >"$build/test_matmul_int_matmul.log" 2>&1 &
pids+=($!)
for p in "${pids[@]}"; do wait "$p" || failed=1; done
for p in isa_probe "${programs[@]}"; do cat "$build/$p.log"; done
if [ $failed -ne 0 ]; then
  echo "aarch64 tests: the cross build failed" >&2
  exit 1
fi

echo "compiler: $("$cxx" --version | head -n 1)"
echo "emulator: $("$qemu" --version | head -n 1)"
status=0
first=1
for cpu in $cpus; do
  echo "== $qemu -cpu $cpu: pare detects$("$qemu" -cpu "$cpu" "$build/isa_probe")"
  for p in "${programs[@]}"; do
    [ $first -eq 0 ] && [ "$p" = test_kernels ] && continue
    start=$(date +%s)
    out="$("$qemu" -cpu "$cpu" "$build/$p" 2>&1)"
    rc=$?
    summary="$(printf '%s\n' "$out" | grep -E '^(All tests passed|test cases:)' | tail -n 1)"
    printf '   %-24s %s (%ss)\n' "$p" "${summary:-no Catch2 summary}" "$(($(date +%s) - start))"
    if [ $rc -ne 0 ]; then
      printf '%s\n' "$out" | tail -n 60
      status=1
    fi
  done
  first=0
done
if [ $status -eq 0 ]; then
  echo "aarch64 tests: all passed"
else
  echo "aarch64 tests: FAILED" >&2
fi
exit $status
