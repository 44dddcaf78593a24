// The dispatched row kernels: quantize, stochastic quantize, dequantize, fake-quant, scan, fused int4 pack/unpack.
#pragma once

// Each function has exactly the signature and the semantics of its scalar reference in
// pare/kernels/ref/ (quantize_row_ref.hpp, quantize_row_int4_ref.hpp): codes and floats
// are bit-identical on every ISA. On first call (and after set_enabled_isas) the best
// enabled variant is chosen, among
//
//     x86:  avx512bw > avx2 > sse4.1 > scalar        arm64:  neon > scalar
//
// and recorded for last_used_isa(). The variants are <isa>::row = row_kernels<<isa>::ops>:
// one body (pare/kernels/detail/row_kernels.hpp) over each ISA's operation traits
// (x86/quantize_row_<isa>.hpp, arm/quantize_row_neon.hpp). No alignment is required and
// n may be any size.
// Nothing is validated (the API boundary does it). The functions are not noexcept only
// because choosing a variant reads PARE_ISA, which throws argument_error /
// unsupported_error on a malformed value; the kernels themselves never throw.
//
// The *_streaming variants of the kernels that write floats give the same results but
// store y with non-temporal (cache-bypassing) stores where the ISA has them. Use them
// when y is large and not read again soon, e.g. when materialising a whole matrix that
// is larger than the last-level cache; they are slower when y is read right after
// (a row dequantized into a scratch buffer for immediate use).

#include <cstddef>
#include <cstdint>

#include "pare/core/dispatch.hpp"
#include "pare/kernels/ref/quantize_row_int4_ref.hpp"
#include "pare/kernels/ref/quantize_row_ref.hpp"
#include "pare/kernels/row_qparams.hpp"

#if PARE_HAS_X86_KERNELS
#include "pare/kernels/x86/quantize_row_avx2.hpp"
#include "pare/kernels/x86/quantize_row_avx512bw.hpp"
#include "pare/kernels/x86/quantize_row_sse41.hpp"
#endif
#if defined(__aarch64__)
#include "pare/kernels/arm/quantize_row_neon.hpp"
#define PARE_DETAIL_NEON_KERNELS 1
#else
#define PARE_DETAIL_NEON_KERNELS 0
#endif

PARE_NAMESPACE_BEGIN
namespace kernels {

// Lists the compiled variants of the kernel `name`, best first, ending with the reference `ref_name`.
// clang-format off
#if PARE_HAS_X86_KERNELS
#define PARE_DETAIL_ROW_VARIANTS(name, ref_name) \
  {isa::avx512bw, &avx512bw::row::name}, {isa::avx2, &avx2::row::name}, {isa::sse4_1, &sse41::row::name}, \
  {isa::scalar, &ref::ref_name}
#elif PARE_DETAIL_NEON_KERNELS
#define PARE_DETAIL_ROW_VARIANTS(name, ref_name) {isa::neon, &neon::row::name}, {isa::scalar, &ref::ref_name}
#else
#define PARE_DETAIL_ROW_VARIANTS(name, ref_name) {isa::scalar, &ref::ref_name}
#endif
// clang-format on

/// codes[i] = the nearest-even code of x[i] (see ref::quantize_row).
inline void quantize_row(const float* x, std::size_t n, const row_qparams& p, std::uint8_t* codes) {
  using fn = void (*)(const float*, std::size_t, const row_qparams&, std::uint8_t*) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(quantize_row, quantize_row)};
  d.pick()(x, n, p, codes);
}

/// Stochastic rounding with u = counter_uniform(key, col0 + i) (see ref::quantize_row_stochastic).
inline void quantize_row_stochastic(const float* x, std::size_t n, const row_qparams& p, std::uint32_t key,
                                    std::uint32_t col0, std::uint8_t* codes) {
  using fn =
      void (*)(const float*, std::size_t, const row_qparams&, std::uint32_t, std::uint32_t, std::uint8_t*) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(quantize_row_stochastic, quantize_row_stochastic)};
  d.pick()(x, n, p, key, col0, codes);
}

/// y[i] = float(q - z) * s from code bytes (see ref::dequantize_row).
inline void dequantize_row(const std::uint8_t* codes, std::size_t n, const row_qparams& p, bool is_signed, float* y) {
  using fn = void (*)(const std::uint8_t*, std::size_t, const row_qparams&, bool, float*) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(dequantize_row, dequantize_row)};
  d.pick()(codes, n, p, is_signed, y);
}

/// y[i] = dequantize(quantize(x[i])), nearest-even (see ref::fake_quant_row). y may equal x.
inline void fake_quant_row(const float* x, std::size_t n, const row_qparams& p, float* y) {
  using fn = void (*)(const float*, std::size_t, const row_qparams&, float*) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(fake_quant_row, fake_quant_row)};
  d.pick()(x, n, p, y);
}

/// Min/max of the finite elements (-0.0 < +0.0) and the first non-finite index (see ref::scan_row).
inline row_stats scan_row(const float* x, std::size_t n) {
  using fn = row_stats (*)(const float*, std::size_t) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(scan_row, scan_row)};
  return d.pick()(x, n);
}

/// quantize_row, then two codes per byte, element 2k in the low nibble; writes (n + 1) / 2
/// bytes (see ref::quantize_row_int4). The format must have at most 4 bits.
inline void quantize_row_int4(const float* x, std::size_t n, const row_qparams& p, std::uint8_t* packed) {
  using fn = void (*)(const float*, std::size_t, const row_qparams&, std::uint8_t*) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(quantize_row_int4, quantize_row_int4)};
  d.pick()(x, n, p, packed);
}

/// y[i] = float(q - z) * s from packed nibbles (see ref::dequantize_row_int4).
inline void dequantize_row_int4(const std::uint8_t* packed, std::size_t n, const row_qparams& p, bool is_signed,
                                float* y) {
  using fn = void (*)(const std::uint8_t*, std::size_t, const row_qparams&, bool, float*) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(dequantize_row_int4, dequantize_row_int4)};
  d.pick()(packed, n, p, is_signed, y);
}

/// dequantize_row with non-temporal stores for y (see the note at the top).
inline void dequantize_row_streaming(const std::uint8_t* codes, std::size_t n, const row_qparams& p, bool is_signed,
                                     float* y) {
  using fn = void (*)(const std::uint8_t*, std::size_t, const row_qparams&, bool, float*) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(dequantize_row_streaming, dequantize_row)};
  d.pick()(codes, n, p, is_signed, y);
}

/// fake_quant_row with non-temporal stores for y (see the note at the top). y may equal x.
inline void fake_quant_row_streaming(const float* x, std::size_t n, const row_qparams& p, float* y) {
  using fn = void (*)(const float*, std::size_t, const row_qparams&, float*) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(fake_quant_row_streaming, fake_quant_row)};
  d.pick()(x, n, p, y);
}

/// dequantize_row_int4 with non-temporal stores for y (see the note at the top).
inline void dequantize_row_int4_streaming(const std::uint8_t* packed, std::size_t n, const row_qparams& p,
                                          bool is_signed, float* y) {
  using fn = void (*)(const std::uint8_t*, std::size_t, const row_qparams&, bool, float*) noexcept;
  static const dispatcher<fn> d{PARE_DETAIL_ROW_VARIANTS(dequantize_row_int4_streaming, dequantize_row_int4)};
  d.pick()(packed, n, p, is_signed, y);
}

#undef PARE_DETAIL_ROW_VARIANTS
#undef PARE_DETAIL_NEON_KERNELS

}  // namespace kernels
PARE_NAMESPACE_END
