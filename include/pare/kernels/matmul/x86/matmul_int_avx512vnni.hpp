// AVX-512 VNNI integer matmul kernels: vpdpbusd on u8 activations × s8 int8 weights, and u8 int4 nibbles × s8 activations.
#pragma once

#include "pare/core/config.hpp"

#if PARE_HAS_X86_KERNELS
// GCC 12 warns (-Wmaybe-uninitialized) on the self-initialised _mm512_undefined_*()
// inside its own AVX-512 intrinsics once they are inlined here (GCC PR 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "pare/kernels/matmul/matmul_args.hpp"
#include "pare/kernels/matmul/packed_weights.hpp"

PARE_NAMESPACE_BEGIN
namespace kernels {
namespace avx512vnni_mm {

/// acc += vpdpbusd(u, s). GCC 12 allocates the intrinsic's tied accumulator badly in
/// register-tiled loops (a register copy per accumulator and iteration); the same
/// instruction through inline assembly lets it keep each accumulator in place.
PARE_TARGET_AVX512VNNI PARE_ALWAYS_INLINE __m512i dpbusd(__m512i acc, __m512i u, __m512i s) noexcept {
#if defined(__GNUC__) && !defined(__clang__)
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
#else
  return _mm512_dpbusd_epi32(acc, u, s);
#endif
}

struct w8 {
  __m512i v;
};
PARE_TARGET_AVX512VNNI PARE_ALWAYS_INLINE w8 prep8(__m512i w) noexcept { return {w}; }
PARE_TARGET_AVX512VNNI PARE_ALWAYS_INLINE __m512i dot8(__m512i acc, const w8& w, const std::uint8_t* xu,
                                                      const std::int8_t*) noexcept {
  std::int32_t u;
  std::memcpy(&u, xu, 4);
  return dpbusd(acc, _mm512_set1_epi32(u), w.v);  // Σ (q + 128)·code
}
PARE_TARGET_AVX512VNNI PARE_ALWAYS_INLINE __m512i fix8(__m512i acc, __m512i csum) noexcept {
  return _mm512_sub_epi32(acc, _mm512_slli_epi32(csum, 7));  // − 128·Σcode
}
PARE_TARGET_AVX512VNNI PARE_ALWAYS_INLINE __m512i dot4(__m512i acc, __m512i w, const std::int8_t* x) noexcept {
  std::int32_t s;
  std::memcpy(&s, x, 4);
  return dpbusd(acc, w, _mm512_set1_epi32(s));
}

#define PARE_MM_TARGET PARE_TARGET_AVX512VNNI
#include "pare/kernels/matmul/x86/matmul_int_512_body.hpp"
#undef PARE_MM_TARGET

// GEMV (one row): panels of 8 int8 tiles / 6 int4 tiles, K unblocked: more concurrent
// tile streams keep more DRAM lines in flight for one thread (int8: 8 streams read closer
// to the bench's read loop than 4, and 1 or 2 fell well short; int4: 6 and 8 alike).
// GEMM: 8 rows × 3 tiles (24 accumulators), K-blocks of 4096 k (1024 int8 quads, 512
// int4 octets; see matmul_int_512_body.hpp).
PARE_TARGET_AVX512VNNI inline void matmul_int8_block(const packed_int8& w, const matmul_acts& a,
                                                     const matmul_block& b) noexcept {
  if (b.m1 - b.m0 == 1)
    block_impl<1, 8, ~std::size_t(0)>(w, a, b);
  else
    block_impl<matmul_act_panel_rows, 3, 1024>(w, a, b);  // micro-tiles of whole qu panels
}
PARE_TARGET_AVX512VNNI inline void matmul_int4_block(const packed_int4& w, const matmul_acts& a,
                                                     const matmul_block& b) noexcept {
  if (b.m1 - b.m0 == 1)
    block_impl<1, 6, ~std::size_t(0)>(w, a, b);
  else
    block_impl<8, 3, 512>(w, a, b);
}

}  // namespace avx512vnni_mm
}  // namespace kernels
PARE_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // PARE_HAS_X86_KERNELS
