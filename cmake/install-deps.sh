#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages pare's build needs, only those missing (sourced or run by run-tests.sh / run-main.sh).
set -euo pipefail

PARE_DEBIAN_PACKAGES=(cmake g++ libxtensor-dev xtl-dev catch2 libbenchmark-dev nlohmann-json3-dev
                      libopenblas-dev liblapacke-dev libxtensor-blas-dev libcli11-dev)

# PARE_EXTRA_PACKAGES (optional, space-separated): more packages for one run, e.g. the
# ThreadSanitizer pass of .ci/run installs "clang libclang-rt-14-dev".
pare_install_deps() {
  local wanted=("${PARE_DEBIAN_PACKAGES[@]}")
  # shellcheck disable=SC2206  # a word list
  [ -n "${PARE_EXTRA_PACKAGES:-}" ] && wanted+=(${PARE_EXTRA_PACKAGES})
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "pare: not a Debian-based system; install by hand: ${wanted[*]}" >&2
    return 0
  fi
  local missing=() p
  for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "pare: missing packages ${missing[*]}, and not root and no sudo to install them" >&2
      return 1
    fi
    sudo=(sudo)
  fi
  echo "pare: installing missing packages: ${missing[*]}"
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  pare_install_deps
fi
