// Compiler and platform macros shared by every pare header.
#pragma once

#include "pare/version.hpp"

// pare lives in `namespace pare { inline namespace v0 { ... } }` so that two
// prototypes vendoring different pare versions can be linked into one program.
#define PARE_NAMESPACE_BEGIN namespace pare { inline namespace v0 {
#define PARE_NAMESPACE_END } }

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define PARE_ARCH_X86 1
#else
#define PARE_ARCH_X86 0
#endif

#if defined(__aarch64__) || defined(_M_ARM64) || defined(__ARM_NEON)
#define PARE_ARCH_ARM 1
#else
#define PARE_ARCH_ARM 0
#endif

// Function-level ISA targets: a function carrying one of these may use that ISA's
// intrinsics although the translation unit is compiled without -m flags; callers
// must only reach it through the runtime dispatch (see pare/core/isa.hpp).
#if PARE_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
#define PARE_TARGET_SSE41 __attribute__((target("sse4.1")))
#define PARE_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define PARE_TARGET_AVX512BW __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define PARE_TARGET_AVX512VNNI \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define PARE_HAS_X86_KERNELS 1
#else
#define PARE_HAS_X86_KERNELS 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PARE_RESTRICT __restrict__
#define PARE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PARE_RESTRICT
#define PARE_ALWAYS_INLINE inline
#endif
