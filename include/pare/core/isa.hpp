// Instruction-set extensions: the isa bitmask, CPU detection (CPUID + XCR0), PARE_ISA, last_used_isa().
#pragma once

// Terms
// -----
// An `isa` value names one instruction-set level a kernel variant is written for; a
// set of them is a bitmask of the same enum. The levels form two chains, each level
// implying the ones before it on its chain:
//
//     x86:  scalar < sse4_1 < avx2 < avx512bw < avx512vnni
//     arm:  scalar < neon < neon_dot
//
// `detected_isas()` is what this CPU *and* its operating system support (AVX state
// must be enabled in XCR0, not only reported by CPUID). `enabled_isas()` is the
// detected set, narrowed by the environment variable `PARE_ISA=<level>` (keep only
// that level and those below it) and by `set_enabled_isas()` (tests use it to run
// every variant). Every dispatched kernel picks the best enabled variant it has and
// records it, so tests can assert `last_used_isa()` (per calling thread).

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "pare/core/error.hpp"

#if PARE_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#if PARE_ARCH_ARM && defined(__linux__)
#include <sys/auxv.h>
#endif

PARE_NAMESPACE_BEGIN

/// One instruction-set level, or a set of them (bitmask).
enum class isa : std::uint32_t {
  none = 0,
  scalar = 1u << 0,
  sse4_1 = 1u << 1,
  avx2 = 1u << 2,  // with FMA and F16C
  avx512bw = 1u << 3,  // with F, BW, VL, DQ
  avx512vnni = 1u << 4,
  neon = 1u << 5,
  neon_dot = 1u << 6,
};

constexpr isa operator|(isa a, isa b) noexcept { return isa(std::uint32_t(a) | std::uint32_t(b)); }
constexpr isa operator&(isa a, isa b) noexcept { return isa(std::uint32_t(a) & std::uint32_t(b)); }
constexpr isa operator~(isa a) noexcept { return isa(~std::uint32_t(a) & 0x7fu); }
constexpr bool has(isa set, isa level) noexcept { return (set & level) == level && level != isa::none; }

/// Every level, best first; the order in which variants are preferred.
inline constexpr isa all_isas_best_first[] = {isa::avx512vnni, isa::avx512bw, isa::avx2, isa::sse4_1,
                                              isa::neon_dot,   isa::neon,     isa::scalar};

/// "scalar", "sse4.1", "avx2", "avx512bw", "avx512vnni", "neon", "neon_dot" (single levels).
inline const char* to_string(isa level) noexcept {
  switch (level) {
    case isa::none: return "none";
    case isa::scalar: return "scalar";
    case isa::sse4_1: return "sse4.1";
    case isa::avx2: return "avx2";
    case isa::avx512bw: return "avx512bw";
    case isa::avx512vnni: return "avx512vnni";
    case isa::neon: return "neon";
    case isa::neon_dot: return "neon_dot";
  }
  return "(set)";
}

/// The level together with every level below it on its chain.
constexpr isa with_lower_levels(isa level) noexcept {
  switch (level) {
    case isa::avx512vnni: return isa::avx512vnni | isa::avx512bw | isa::avx2 | isa::sse4_1 | isa::scalar;
    case isa::avx512bw: return isa::avx512bw | isa::avx2 | isa::sse4_1 | isa::scalar;
    case isa::avx2: return isa::avx2 | isa::sse4_1 | isa::scalar;
    case isa::sse4_1: return isa::sse4_1 | isa::scalar;
    case isa::neon_dot: return isa::neon_dot | isa::neon | isa::scalar;
    case isa::neon: return isa::neon | isa::scalar;
    default: return isa::scalar;
  }
}

/// Parses a level name (as printed by to_string; "sse4_1" also accepted).
inline isa parse_isa(const std::string& name) {
  for (isa l : all_isas_best_first)
    if (name == to_string(l)) return l;
  if (name == "sse4_1") return isa::sse4_1;
  detail::fail<argument_error>("parse_isa: expected one of scalar, sse4.1, avx2, avx512bw, avx512vnni, neon, "
                               "neon_dot, got '", name, "'");
}

namespace detail {
#if PARE_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
inline std::uint64_t read_xcr0() noexcept {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (std::uint64_t(edx) << 32) | eax;
}
#endif

/// Probes the CPU and the OS once.
inline isa probe_isas() noexcept {
  isa found = isa::scalar;
#if PARE_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return found;
  const bool sse41 = c & (1u << 19);
  const bool osxsave = c & (1u << 27);
  const bool avx = c & (1u << 28);
  const bool fma = c & (1u << 12);
  const bool f16c = c & (1u << 29);
  if (sse41) found = found | isa::sse4_1;
  if (!osxsave || !avx) return found;
  const std::uint64_t xcr0 = read_xcr0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;            // XMM and YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;       // plus opmask, ZMM_Hi256, Hi16_ZMM
  if (!os_avx) return found;
  unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0;
  __cpuid_count(7, 0, a7, b7, c7, d7);
  const bool avx2 = b7 & (1u << 5);
  if (!(avx2 && fma && f16c)) return found;
  found = found | isa::avx2;
  const bool f = b7 & (1u << 16), dq = b7 & (1u << 17), bw = b7 & (1u << 30), vl = b7 & (1u << 31);
  if (!(os_avx512 && f && dq && bw && vl)) return found;
  found = found | isa::avx512bw;
  if (c7 & (1u << 11)) found = found | isa::avx512vnni;
#elif PARE_ARCH_ARM
  found = found | isa::neon;  // Advanced SIMD is mandatory on AArch64
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) found = found | isa::neon_dot;
#elif defined(__ARM_FEATURE_DOTPROD)
  found = found | isa::neon_dot;
#endif
#endif
  return found;
}

/// Applies PARE_ISA (if set) to the detected set; throws argument_error on a bad value.
inline isa apply_env_override(isa detected) {
  const char* env = std::getenv("PARE_ISA");
  if (env == nullptr || *env == '\0') return detected;
  isa want;
  try {
    want = parse_isa(env);
  } catch (const argument_error& e) {
    fail<argument_error>("environment variable PARE_ISA: ", e.what());
  }
  if (!has(detected, want))
    fail<unsupported_error>("environment variable PARE_ISA: level '", env, "' is not supported by this CPU/OS");
  return detected & with_lower_levels(want);
}

struct isa_state {
  std::atomic<std::uint32_t> enabled{0};  // 0 = not yet initialised
  std::atomic<std::uint64_t> generation{1};
};
inline isa_state& state() noexcept {
  static isa_state s;
  return s;
}
inline thread_local isa last_isa = isa::none;
}  // namespace detail

/// The levels this CPU and OS support (always includes scalar). Probed once.
inline isa detected_isas() noexcept {
  static const isa d = detail::probe_isas();
  return d;
}

/// The levels kernels may use now: detected ∩ PARE_ISA ∩ set_enabled_isas().
inline isa enabled_isas() {
  auto& s = detail::state();
  std::uint32_t e = s.enabled.load(std::memory_order_acquire);
  if (e == 0) {
    e = std::uint32_t(detail::apply_env_override(detected_isas()));
    std::uint32_t expected = 0;
    s.enabled.compare_exchange_strong(expected, e, std::memory_order_acq_rel);
    e = s.enabled.load(std::memory_order_acquire);
  }
  return isa(e);
}

/// Restricts kernels to `levels` ∩ detected (scalar is always kept). Returns the set in
/// force afterwards. Intended for tests and benchmarks. Safe while other threads call
/// kernels: a kernel call that has started may finish with the variants of the old set
/// (the variants agree bit for bit on integer results), later calls use the new set.
inline isa set_enabled_isas(isa levels) {
  auto& s = detail::state();
  const isa e = (levels & detected_isas()) | isa::scalar;
  s.enabled.store(std::uint32_t(e), std::memory_order_release);
  s.generation.fetch_add(1, std::memory_order_acq_rel);
  return e;
}

/// Restores the default (detected ∩ PARE_ISA).
inline isa reset_enabled_isas() { return set_enabled_isas(detail::apply_env_override(detected_isas())); }

/// The level of the variant that the most recent dispatched kernel call on this thread ran.
inline isa last_used_isa() noexcept { return detail::last_isa; }

/// Each single level in `set`, best first.
template <class F>
void for_each_isa(isa set, F&& f) {
  for (isa l : all_isas_best_first)
    if (has(set, l)) f(l);
}

PARE_NAMESPACE_END
