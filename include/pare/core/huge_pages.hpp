// resize_huge(v, n): grows a large std::vector asking the OS for transparent huge pages first, so its first touch faults 2 MiB pages instead of 4 KiB ones.
#pragma once

// Under KVM a 4 KiB page fault costs microseconds: a fresh 128 MiB array (the double
// Hessian factor of a 4096-wide layer) faulted page by page took about a third of a
// GPTQ call. With THP in "madvise" mode (Debian's default) the kernel maps 2 MiB pages
// only where asked. resize_huge reserves the storage (glibc maps blocks this large
// afresh with mmap, untouched), advises MADV_HUGEPAGE over the 2 MiB-aligned interior,
// then resizes (value-initialises, which is the first touch). Elsewhere, on small sizes
// or when the advice is refused it is a plain resize. The contents are those of
// v.resize(n); only vectors that are empty (capacity 0) get the advice.

#include <cstddef>
#include <cstdint>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN

template <class T>
void resize_huge(std::vector<T>& v, std::size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::size_t page = std::size_t(2) << 20;
  if (v.capacity() == 0 && n * sizeof(T) >= 4 * page) {
    v.reserve(n);
    const auto lo = reinterpret_cast<std::uintptr_t>(v.data());
    const std::uintptr_t a = (lo + page - 1) & ~std::uintptr_t(page - 1);
    const std::uintptr_t b = (lo + n * sizeof(T)) & ~std::uintptr_t(page - 1);
    if (b > a) (void)::madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);  // advice only: failure is harmless
  }
#endif
  v.resize(n);
}

PARE_NAMESPACE_END
