// The SIMD row kernels written once over per-ISA operation traits; included once per ISA, inside that ISA's namespace.
//
// No #pragma once: each ISA header (x86/quantize_row_<isa>.hpp, arm/quantize_row_neon.hpp)
// includes this file inside its own namespace (pare::kernels::sse41, ::avx2, ...) after
// its standard headers and with PARE_ROW_TARGET defined as its function target attribute
// (empty where the ISA is the translation unit's baseline), then defines its traits
// `ops` and `using row = row_kernels<ops>;`. The dispatch in pare/kernels/quantize_row.hpp
// lists &<isa>::row::quantize_row and so on.
//
// Why an inclusion per ISA rather than one template: a function that handles an ISA's
// vectors must itself carry that ISA's target attribute. GCC refuses to inline an
// always_inline target function into a function without it ("target specific option
// mismatch") and clang rejects both the inlining and passing __m256 by value in such a
// function, while an attribute cannot depend on a template argument. So the generic code
// is spelled once here and compiled once per ISA namespace with that ISA's attribute
// (Highway's model: HWY_ATTR on code re-included per target), which also keeps per-ISA
// copies apart at link time.
//
// The traits type Ops (all members static, always_inline, carrying the ISA's attribute):
//
//   vf, vi, W                   float / int32 vector types with W lanes
//   stream_bytes                alignment of non-temporal stores; 0: the ISA has none
//   nibble_chunk                codes per pack_chunk / unpack_chunk call
//   set1 loadu storeu stream fence mul add min max floor to_int_nearest to_float
//   set1i loadi addi subi mulli xori srli<k> iota
//   load_part(p, m[, fill])     lanes >= m are `fill` (0 by default); reads p[0, m) only
//   store_part(p, m, v)         writes p[0, m) only; loadi_part, likewise for int32
//   load_codes<Signed>(p)       W code bytes widened to int32 (sign- or zero-extended)
//   load_codes_part<Signed>(p, m), store_codes(p, q), store_codes4(p, q0..q3),
//   store_codes_part(p, m, q)   low bytes of int32 lanes (two's complement)
//   any_nonfinite(a, b) hmin hmax
//   pack_chunk(codes, packed)   nibble_chunk codes -> nibble_chunk / 2 bytes (nibble order of
//                               ref/quantize_row_int4_ref.hpp); unpack_chunk<Signed> the inverse
//
// padded_tails<Ops> supplies the partial loads and stores from a zero-padded stack vector
// for ISAs without masked memory operations (derive from it to use them).
//
// Contract of every kernel (the reference's, pare/kernels/ref/): x, codes, y and packed
// need no alignment; n may be any size including 0; nothing outside the n elements is
// read or written. Full vectors use unaligned loads and stores; the last partial vector
// of each group segment goes through the Ops partial operations. The *_streaming
// kernels write y with non-temporal stores from its first stream_bytes boundary on
// (regular stores before it and for the tail; none if y is not float-aligned or the ISA
// has none) and end with Ops::fence(). Results equal pare::kernels::ref bit for bit: the
// same operations in the same order, rounding by to_int_nearest under the caller's
// rounding mode (nearbyint), no multiply followed by a dependent add except the exact
// 2^-24 scaling of the stochastic uniform.

#ifndef PARE_ROW_TARGET
#error "pare/kernels/detail/row_kernels.hpp is included by the ISA headers with PARE_ROW_TARGET defined"
#endif

/// Partial loads and stores through a zero-padded stack vector (SSE4.1, AVX2, NEON).
template <class Ops>
struct padded_tails {
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static auto load_part(const float* x, std::size_t m, float fill = 0.0f) noexcept {
    alignas(64) float b[Ops::W];
    for (std::size_t j = 0; j < Ops::W; ++j) b[j] = fill;
    std::memcpy(b, x, m * sizeof(float));
    return Ops::loadu(b);
  }
  template <class V>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_part(float* y, std::size_t m, V v) noexcept {
    alignas(64) float b[Ops::W];
    Ops::storeu(b, v);
    std::memcpy(y, b, m * sizeof(float));
  }
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static auto loadi_part(const std::int32_t* z, std::size_t m) noexcept {
    alignas(64) std::int32_t b[Ops::W] = {};
    std::memcpy(b, z, m * sizeof(std::int32_t));
    return Ops::loadi(b);
  }
  template <bool Signed>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static auto load_codes_part(const std::uint8_t* c, std::size_t m) noexcept {
    alignas(16) std::uint8_t b[Ops::W < 16 ? 16 : Ops::W] = {};
    std::memcpy(b, c, m);
    return Ops::template load_codes<Signed>(b);
  }
  template <class V>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void store_codes_part(std::uint8_t* dst, std::size_t m, V q) noexcept {
    alignas(16) std::uint8_t b[Ops::W < 16 ? 16 : Ops::W];
    Ops::store_codes(b, q);
    std::memcpy(dst, b, m);
  }
};

/// The row kernels of pare/kernels/quantize_row.hpp for one ISA's traits.
template <class Ops>
struct row_kernels {
  using vf = typename Ops::vf;
  using vi = typename Ops::vi;
  static constexpr std::size_t W = Ops::W;
  static constexpr std::size_t block = kernels::detail::row_block;
  static constexpr std::uint32_t golden = 0x9E3779B9u;  // counter_bits' column multiplier
  static_assert(block % W == 0 && block % Ops::nibble_chunk == 0 && Ops::nibble_chunk % 2 == 0,
                "row_kernels: W and Ops::nibble_chunk must divide row_block, nibble_chunk must be even");

  // ---- one vector -----------------------------------------------------------------

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf clamp(vf v, vf lo, vf hi) noexcept {
    return Ops::min(Ops::max(v, lo), hi);
  }

  // Nearest-even codes: to_int_nearest(clamp(x * inv, lo, hi)) + z.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi round(vf x, vf inv, vf lo, vf hi, vi z) noexcept {
    return Ops::addi(Ops::to_int_nearest(clamp(Ops::mul(x, inv), lo, hi)), z);
  }

  // counter_uniform of the counters key + col * golden in h.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf uniform(vi h) noexcept {
    h = Ops::xori(h, Ops::template srli<16>(h));
    h = Ops::mulli(h, Ops::set1i(0x7feb352d));
    h = Ops::xori(h, Ops::template srli<15>(h));
    h = Ops::mulli(h, Ops::set1i(static_cast<std::int32_t>(0x846ca68bu)));
    h = Ops::xori(h, Ops::template srli<16>(h));
    return Ops::mul(Ops::to_float(Ops::template srli<8>(h)), Ops::set1(1.0f / 16777216.0f));
  }

  // Stochastic codes: clamp(floor(clamp(x * inv) + u)) + z (the floor is integer-valued,
  // so to_int_nearest converts it exactly).
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi stoch(vf x, vf inv, vf lo, vf hi, vi z, vi ctr) noexcept {
    const vf v = clamp(Ops::mul(x, inv), lo, hi);
    return Ops::addi(Ops::to_int_nearest(clamp(Ops::floor(Ops::add(v, uniform(ctr))), lo, hi)), z);
  }

  // Fake-quant values: float(to_int_nearest(clamp(x * inv))) * s.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf fake(vf x, vf inv, vf lo, vf hi, vf s) noexcept {
    return Ops::mul(Ops::to_float(Ops::to_int_nearest(clamp(Ops::mul(x, inv), lo, hi))), s);
  }

  // Dequantized values float(q - z) * s.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf deq(vi q, vf s, vi z) noexcept {
    return Ops::mul(Ops::to_float(Ops::subi(q, z)), s);
  }

  // Clamp bound float(q - z) for per-lane zero points.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vf bound(int q, vi z) noexcept {
    return Ops::to_float(Ops::subi(Ops::set1i(q), z));
  }

  // Counters key + (col + lane) * golden of the W lanes.
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static vi counters(std::uint32_t key, std::uint32_t col) noexcept {
    return Ops::addi(Ops::set1i(static_cast<std::int32_t>(key + col * golden)),
                     Ops::mulli(Ops::iota(), Ops::set1i(static_cast<std::int32_t>(golden))));
  }

  // Elements of y before its first stream_bytes boundary (n if y is not float-aligned).
  PARE_ALWAYS_INLINE static std::size_t stream_head(const float* y, std::size_t n) noexcept {
    const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(y);
    return a % sizeof(float) ? n : std::min(n, ((std::uintptr_t(0) - a) & (Ops::stream_bytes - 1)) / sizeof(float));
  }

  // ---- segments: one group, broadcast parameters ----------------------------------

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void quantize_segment(const float* x, std::size_t n, float inv,
                                                                  std::int32_t z, int qmin, int qmax,
                                                                  std::uint8_t* codes) noexcept {
    const vf vi_ = Ops::set1(inv), lo = Ops::set1(float(qmin - z)), hi = Ops::set1(float(qmax - z));
    const vi vz = Ops::set1i(z);
    std::size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W)
      Ops::store_codes4(codes + i, round(Ops::loadu(x + i), vi_, lo, hi, vz),
                        round(Ops::loadu(x + i + W), vi_, lo, hi, vz), round(Ops::loadu(x + i + 2 * W), vi_, lo, hi, vz),
                        round(Ops::loadu(x + i + 3 * W), vi_, lo, hi, vz));
    for (; i + W <= n; i += W) Ops::store_codes(codes + i, round(Ops::loadu(x + i), vi_, lo, hi, vz));
    if (i < n) Ops::store_codes_part(codes + i, n - i, round(Ops::load_part(x + i, n - i), vi_, lo, hi, vz));
  }

  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void stochastic_segment(const float* x, std::size_t n, float inv,
                                                                    std::int32_t z, int qmin, int qmax,
                                                                    std::uint32_t key, std::uint32_t col,
                                                                    std::uint8_t* codes) noexcept {
    const vf vi_ = Ops::set1(inv), lo = Ops::set1(float(qmin - z)), hi = Ops::set1(float(qmax - z));
    const vi vz = Ops::set1i(z), step = Ops::set1i(static_cast<std::int32_t>(golden * std::uint32_t(W)));
    vi ctr = counters(key, col);
    std::size_t i = 0;
    for (; i + W <= n; i += W, ctr = Ops::addi(ctr, step))
      Ops::store_codes(codes + i, stoch(Ops::loadu(x + i), vi_, lo, hi, vz, ctr));
    if (i < n) Ops::store_codes_part(codes + i, n - i, stoch(Ops::load_part(x + i, n - i), vi_, lo, hi, vz, ctr));
  }

  template <bool Signed, bool Stream>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void dequantize_segment(const std::uint8_t* codes, std::size_t n, float s,
                                                                    std::int32_t z, float* y) noexcept {
    const vf vs = Ops::set1(s);
    const vi vz = Ops::set1i(z);
    std::size_t i = 0;
    if constexpr (Stream && Ops::stream_bytes != 0) {
      if (n >= 2 * W) {
        if (const std::size_t h = stream_head(y, n); h < W) {
          if (h) Ops::store_part(y, h, deq(Ops::template load_codes_part<Signed>(codes, h), vs, vz));
          for (i = h; i + W <= n; i += W) Ops::stream(y + i, deq(Ops::template load_codes<Signed>(codes + i), vs, vz));
        }
      }
    }
    for (; i + 2 * W <= n; i += 2 * W) {
      Ops::storeu(y + i, deq(Ops::template load_codes<Signed>(codes + i), vs, vz));
      Ops::storeu(y + i + W, deq(Ops::template load_codes<Signed>(codes + i + W), vs, vz));
    }
    for (; i + W <= n; i += W) Ops::storeu(y + i, deq(Ops::template load_codes<Signed>(codes + i), vs, vz));
    if (i < n) Ops::store_part(y + i, n - i, deq(Ops::template load_codes_part<Signed>(codes + i, n - i), vs, vz));
  }

  template <bool Stream>
  PARE_ROW_TARGET PARE_ALWAYS_INLINE static void fake_quant_segment(const float* x, std::size_t n, float inv, float s,
                                                                    std::int32_t z, int qmin, int qmax,
                                                                    float* y) noexcept {
    const vf vi_ = Ops::set1(inv), vs = Ops::set1(s);
    const vf lo = Ops::set1(float(qmin - z)), hi = Ops::set1(float(qmax - z));
    std::size_t i = 0;
    if constexpr (Stream && Ops::stream_bytes != 0) {
      if (n >= 2 * W) {
        if (const std::size_t h = stream_head(y, n); h < W) {
          if (h) Ops::store_part(y, h, fake(Ops::load_part(x, h), vi_, lo, hi, vs));
          for (i = h; i + W <= n; i += W) Ops::stream(y + i, fake(Ops::loadu(x + i), vi_, lo, hi, vs));
        }
      }
    }
    for (; i + 2 * W <= n; i += 2 * W) {
      Ops::storeu(y + i, fake(Ops::loadu(x + i), vi_, lo, hi, vs));
      Ops::storeu(y + i + W, fake(Ops::loadu(x + i + W), vi_, lo, hi, vs));
    }
    for (; i + W <= n; i += W) Ops::storeu(y + i, fake(Ops::loadu(x + i), vi_, lo, hi, vs));
    if (i < n) Ops::store_part(y + i, n - i, fake(Ops::load_part(x + i, n - i), vi_, lo, hi, vs));
  }

  // ---- element-wise: parameter arrays aligned with the data -------------------------

  PARE_ROW_TARGET inline static void quantize_elementwise(const float* x, std::size_t n, const float* inv,
                                                          const std::int32_t* z, int qmin, int qmax,
                                                          std::uint8_t* codes) noexcept {
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const vi vz = Ops::loadi(z + i);
      Ops::store_codes(codes + i,
                       round(Ops::loadu(x + i), Ops::loadu(inv + i), bound(qmin, vz), bound(qmax, vz), vz));
    }
    if (const std::size_t m = n - i) {
      const vi vz = Ops::loadi_part(z + i, m);
      Ops::store_codes_part(
          codes + i, m, round(Ops::load_part(x + i, m), Ops::load_part(inv + i, m), bound(qmin, vz), bound(qmax, vz), vz));
    }
  }

  PARE_ROW_TARGET inline static void stochastic_elementwise(const float* x, std::size_t n, const float* inv,
                                                            const std::int32_t* z, int qmin, int qmax,
                                                            std::uint32_t key, std::uint32_t col,
                                                            std::uint8_t* codes) noexcept {
    const vi step = Ops::set1i(static_cast<std::int32_t>(golden * std::uint32_t(W)));
    vi ctr = counters(key, col);
    std::size_t i = 0;
    for (; i + W <= n; i += W, ctr = Ops::addi(ctr, step)) {
      const vi vz = Ops::loadi(z + i);
      Ops::store_codes(codes + i,
                       stoch(Ops::loadu(x + i), Ops::loadu(inv + i), bound(qmin, vz), bound(qmax, vz), vz, ctr));
    }
    if (const std::size_t m = n - i) {
      const vi vz = Ops::loadi_part(z + i, m);
      Ops::store_codes_part(codes + i, m,
                            stoch(Ops::load_part(x + i, m), Ops::load_part(inv + i, m), bound(qmin, vz),
                                  bound(qmax, vz), vz, ctr));
    }
  }

  template <bool Signed>
  PARE_ROW_TARGET inline static void dequantize_elementwise(const std::uint8_t* codes, std::size_t n, const float* s,
                                                            const std::int32_t* z, float* y) noexcept {
    std::size_t i = 0;
    for (; i + W <= n; i += W)
      Ops::storeu(y + i, deq(Ops::template load_codes<Signed>(codes + i), Ops::loadu(s + i), Ops::loadi(z + i)));
    if (const std::size_t m = n - i)
      Ops::store_part(y + i, m,
                      deq(Ops::template load_codes_part<Signed>(codes + i, m), Ops::load_part(s + i, m),
                          Ops::loadi_part(z + i, m)));
  }

  PARE_ROW_TARGET inline static void fake_quant_elementwise(const float* x, std::size_t n, const float* inv,
                                                            const float* s, const std::int32_t* z, int qmin, int qmax,
                                                            float* y) noexcept {
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const vi vz = Ops::loadi(z + i);
      Ops::storeu(y + i, fake(Ops::loadu(x + i), Ops::loadu(inv + i), bound(qmin, vz), bound(qmax, vz),
                              Ops::loadu(s + i)));
    }
    if (const std::size_t m = n - i) {
      const vi vz = Ops::loadi_part(z + i, m);
      Ops::store_part(y + i, m,
                      fake(Ops::load_part(x + i, m), Ops::load_part(inv + i, m), bound(qmin, vz), bound(qmax, vz),
                           Ops::load_part(s + i, m)));
    }
  }

  // ---- spans: elements [i0, i0 + n) of a row; x / codes / y point at element i0 -----
  // group 1: the parameter arrays are read in place; groups narrower than a vector:
  // per-element parameters expanded `block` elements at a time; wider: one segment per group.

  PARE_ROW_TARGET inline static void quantize_span(const float* x, std::size_t i0, std::size_t n, const row_qparams& p,
                                                   std::uint8_t* codes) noexcept {
    const std::size_t G = p.group;
    if (G == 1) return quantize_elementwise(x, n, p.inv_scale + i0, p.zero + i0, p.qmin, p.qmax, codes);
    if (G < W) {
      alignas(64) float inv[block];
      alignas(64) std::int32_t z[block];
      for (std::size_t b = 0; b < n; b += block) {
        const std::size_t len = std::min(block, n - b);
        kernels::detail::expand_params(p, i0 + b, len, inv, nullptr, z);
        quantize_elementwise(x + b, len, inv, z, p.qmin, p.qmax, codes + b);
      }
      return;
    }
    std::size_t g = i0 / G;
    for (std::size_t i = 0, len = std::min(n, G - i0 % G); i < n; i += len, len = std::min(n - i, G), ++g)
      quantize_segment(x + i, len, p.inv_scale[g], p.zero[g], p.qmin, p.qmax, codes + i);
  }

  template <bool Signed, bool Stream>
  PARE_ROW_TARGET inline static void dequantize_span(const std::uint8_t* codes, std::size_t i0, std::size_t n,
                                                     const row_qparams& p, float* y) noexcept {
    const std::size_t G = p.group;
    if (G == 1) return dequantize_elementwise<Signed>(codes, n, p.scale + i0, p.zero + i0, y);
    if (G < W) {
      alignas(64) float s[block];
      alignas(64) std::int32_t z[block];
      for (std::size_t b = 0; b < n; b += block) {
        const std::size_t len = std::min(block, n - b);
        kernels::detail::expand_params(p, i0 + b, len, nullptr, s, z);
        dequantize_elementwise<Signed>(codes + b, len, s, z, y + b);
      }
      return;
    }
    std::size_t g = i0 / G;
    for (std::size_t i = 0, len = std::min(n, G - i0 % G); i < n; i += len, len = std::min(n - i, G), ++g)
      dequantize_segment<Signed, Stream>(codes + i, len, p.scale[g], p.zero[g], y + i);
  }

  template <bool Stream>
  PARE_ROW_TARGET inline static void fake_quant_span(const float* x, std::size_t n, const row_qparams& p,
                                                     float* y) noexcept {
    const std::size_t G = p.group;
    if (G == 1) return fake_quant_elementwise(x, n, p.inv_scale, p.scale, p.zero, p.qmin, p.qmax, y);
    if (G < W) {
      alignas(64) float inv[block], s[block];
      alignas(64) std::int32_t z[block];
      for (std::size_t b = 0; b < n; b += block) {
        const std::size_t len = std::min(block, n - b);
        kernels::detail::expand_params(p, b, len, inv, s, z);
        fake_quant_elementwise(x + b, len, inv, s, z, p.qmin, p.qmax, y + b);
      }
      return;
    }
    for (std::size_t i = 0, g = 0; i < n; i += G, ++g)
      fake_quant_segment<Stream>(x + i, std::min(G, n - i), p.inv_scale[g], p.scale[g], p.zero[g], p.qmin, p.qmax,
                                 y + i);
  }

  template <bool Signed, bool Stream>
  PARE_ROW_TARGET inline static void dequantize_int4_span(const std::uint8_t* packed, std::size_t n,
                                                          const row_qparams& p, float* y) noexcept {
    alignas(64) std::uint8_t tmp[block];
    for (std::size_t b = 0; b < n; b += block) {
      const std::size_t len = std::min(block, n - b);
      unpack_nibbles<Signed>(packed + b / 2, len, tmp);
      dequantize_span<Signed, Stream>(tmp, b, len, p, y + b);
    }
  }

  // ---- int4: two codes per byte (element 2k low nibble, 2k+1 high nibble) -----------

  // n codes -> (n + 1) / 2 bytes.
  PARE_ROW_TARGET inline static void pack_nibbles(const std::uint8_t* codes, std::size_t n,
                                                  std::uint8_t* packed) noexcept {
    constexpr std::size_t C = Ops::nibble_chunk;
    std::size_t i = 0;
    for (; i + C <= n; i += C) Ops::pack_chunk(codes + i, packed + i / 2);
    if (const std::size_t m = n - i) {
      alignas(64) std::uint8_t b[C] = {}, o[C / 2];
      std::memcpy(b, codes + i, m);
      Ops::pack_chunk(b, o);
      std::memcpy(packed + i / 2, o, (m + 1) / 2);
    }
  }

  // The inverse of pack_nibbles; signed codes are sign-extended to a byte.
  template <bool Signed>
  PARE_ROW_TARGET inline static void unpack_nibbles(const std::uint8_t* packed, std::size_t n,
                                                    std::uint8_t* codes) noexcept {
    constexpr std::size_t C = Ops::nibble_chunk;
    std::size_t i = 0;
    for (; i + C <= n; i += C) Ops::template unpack_chunk<Signed>(packed + i / 2, codes + i);
    if (const std::size_t m = n - i) {
      alignas(64) std::uint8_t b[C / 2] = {}, o[C];
      std::memcpy(b, packed + i / 2, (m + 1) / 2);
      Ops::template unpack_chunk<Signed>(b, o);
      std::memcpy(codes + i, o, m);
    }
  }

  // ---- the dispatched kernels (see pare/kernels/quantize_row.hpp) --------------------

  /// See ref::quantize_row.
  PARE_ROW_TARGET inline static void quantize_row(const float* x, std::size_t n, const row_qparams& p,
                                                  std::uint8_t* codes) noexcept {
    quantize_span(x, 0, n, p, codes);
  }

  /// See ref::quantize_row_stochastic.
  PARE_ROW_TARGET inline static void quantize_row_stochastic(const float* x, std::size_t n, const row_qparams& p,
                                                             std::uint32_t key, std::uint32_t col0,
                                                             std::uint8_t* codes) noexcept {
    const std::size_t G = p.group;
    if (G == 1) return stochastic_elementwise(x, n, p.inv_scale, p.zero, p.qmin, p.qmax, key, col0, codes);
    if (G < W) {
      alignas(64) float inv[block];
      alignas(64) std::int32_t z[block];
      for (std::size_t b = 0; b < n; b += block) {
        const std::size_t len = std::min(block, n - b);
        kernels::detail::expand_params(p, b, len, inv, nullptr, z);
        stochastic_elementwise(x + b, len, inv, z, p.qmin, p.qmax, key, col0 + std::uint32_t(b), codes + b);
      }
      return;
    }
    for (std::size_t i = 0, g = 0; i < n; i += G, ++g)
      stochastic_segment(x + i, std::min(G, n - i), p.inv_scale[g], p.zero[g], p.qmin, p.qmax, key,
                         col0 + std::uint32_t(i), codes + i);
  }

  /// See ref::dequantize_row.
  PARE_ROW_TARGET inline static void dequantize_row(const std::uint8_t* codes, std::size_t n, const row_qparams& p,
                                                    bool is_signed, float* y) noexcept {
    if (is_signed)
      dequantize_span<true, false>(codes, 0, n, p, y);
    else
      dequantize_span<false, false>(codes, 0, n, p, y);
  }

  /// dequantize_row with non-temporal stores for y where the ISA has them (same results).
  PARE_ROW_TARGET inline static void dequantize_row_streaming(const std::uint8_t* codes, std::size_t n,
                                                              const row_qparams& p, bool is_signed, float* y) noexcept {
    if (is_signed)
      dequantize_span<true, true>(codes, 0, n, p, y);
    else
      dequantize_span<false, true>(codes, 0, n, p, y);
    Ops::fence();
  }

  /// See ref::fake_quant_row. y may equal x.
  PARE_ROW_TARGET inline static void fake_quant_row(const float* x, std::size_t n, const row_qparams& p,
                                                    float* y) noexcept {
    fake_quant_span<false>(x, n, p, y);
  }

  /// fake_quant_row with non-temporal stores for y where the ISA has them (same results).
  PARE_ROW_TARGET inline static void fake_quant_row_streaming(const float* x, std::size_t n, const row_qparams& p,
                                                              float* y) noexcept {
    fake_quant_span<true>(x, n, p, y);
    Ops::fence();
  }

  /// See ref::scan_row. Fast path: vector min/max and a non-finite test per vector (the
  /// partial last vector is padded with its own first element, which changes neither);
  /// a row with a non-finite value is rescanned by the reference (an error path); a zero
  /// min or max gets scan_row's signed-zero order from settle_signed_zeros.
  PARE_ROW_TARGET inline static row_stats scan_row(const float* x, std::size_t n) noexcept {
    vf mn = Ops::set1(INFINITY), mx = Ops::set1(-INFINITY);
    vf mn2 = mn, mx2 = mx;
    std::size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      const vf a = Ops::loadu(x + i), b = Ops::loadu(x + i + W);
      if (Ops::any_nonfinite(a, b)) return ref::scan_row(x, n);
      mn = Ops::min(mn, a);
      mx = Ops::max(mx, a);
      mn2 = Ops::min(mn2, b);
      mx2 = Ops::max(mx2, b);
    }
    for (; i < n; i += W) {
      const vf a = n - i >= W ? Ops::loadu(x + i) : Ops::load_part(x + i, n - i, x[i]);
      if (Ops::any_nonfinite(a, a)) return ref::scan_row(x, n);
      mn = Ops::min(mn, a);
      mx = Ops::max(mx, a);
    }
    row_stats s{Ops::hmin(Ops::min(mn, mn2)), Ops::hmax(Ops::max(mx, mx2)), n};
    kernels::detail::settle_signed_zeros(x, n, s);
    return s;
  }

  /// See ref::quantize_row_int4: the codes of a block in L1, then packed.
  PARE_ROW_TARGET inline static void quantize_row_int4(const float* x, std::size_t n, const row_qparams& p,
                                                       std::uint8_t* packed) noexcept {
    alignas(64) std::uint8_t tmp[block];
    for (std::size_t b = 0; b < n; b += block) {
      const std::size_t len = std::min(block, n - b);
      quantize_span(x + b, b, len, p, tmp);
      pack_nibbles(tmp, len, packed + b / 2);
    }
  }

  /// See ref::dequantize_row_int4: the nibbles of a block unpacked in L1, then dequantized.
  PARE_ROW_TARGET inline static void dequantize_row_int4(const std::uint8_t* packed, std::size_t n,
                                                         const row_qparams& p, bool is_signed, float* y) noexcept {
    if (is_signed)
      dequantize_int4_span<true, false>(packed, n, p, y);
    else
      dequantize_int4_span<false, false>(packed, n, p, y);
  }

  /// dequantize_row_int4 with non-temporal stores for y where the ISA has them (same results).
  PARE_ROW_TARGET inline static void dequantize_row_int4_streaming(const std::uint8_t* packed, std::size_t n,
                                                                   const row_qparams& p, bool is_signed,
                                                                   float* y) noexcept {
    if (is_signed)
      dequantize_int4_span<true, true>(packed, n, p, y);
    else
      dequantize_int4_span<false, true>(packed, n, p, y);
    Ops::fence();
  }
};
