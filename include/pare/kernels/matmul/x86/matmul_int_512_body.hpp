// Body of the 512-bit integer matmul kernels, included once per ISA namespace (avx512vnni, avx512bw); no include guard on purpose.
//
// Before inclusion the includer defines PARE_MM_TARGET (the function target attribute)
// and, in its namespace, the operations
//   w8  prep8(__m512i w)                         weight form for dot8 (per tile and quad)
//   __m512i dot8(__m512i acc, const w8& w, __m512i xu, __m512i xq)
//        acc[r] += Σ_j x[j]·code[r][j] over a quad (xu: q + 128 as u8, xq: q as s8, both
//        the row's 4 bytes broadcast); for unsigned activations the result is off by
//        128·Σcode, which fix8 removes
//   __m512i fix8(__m512i acc, __m512i csum)      exact int8 group sums
//   __m512i dot4(__m512i acc, __m512i w_u8, __m512i xq)   acc[r] += Σ_j x[j]·w[r][j]
// (No include guard: it is meant to be included several times.)

#include "pare/core/unroll.hpp"  // PARE_UNROLL: full unrolling of the register-tile loops

/// Partial fp32 sums of one micro-tile: part[r][16·j + c] += scale·acc + offset·xsum per group.
template <int MR, int NT, class Packed>
PARE_MM_TARGET PARE_ALWAYS_INLINE void epilogue(const Packed& w, const matmul_acts& a, std::size_t m0,
                                                std::size_t t0, std::size_t g, const __m512i (&acc)[MR][NT],
                                                float* part) noexcept {
  __m512 sc[NT], of[NT];
  PARE_UNROLL
  for (int j = 0; j < NT; ++j) {
    sc[j] = _mm512_load_ps(w.scales16(t0 + j, g));
    of[j] = w.has_offsets() ? _mm512_load_ps(w.offsets16(t0 + j, g)) : _mm512_setzero_ps();
  }
  PARE_UNROLL
  for (int r = 0; r < MR; ++r) {
    const __m512 xs = w.has_offsets() ? _mm512_set1_ps(float(a.xsum[(m0 + r) * w.groups + g])) : _mm512_setzero_ps();
    PARE_UNROLL
    for (int j = 0; j < NT; ++j) {
      float* p = part + (r * NT + j) * 16;
      __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][j]), sc[j], _mm512_load_ps(p));
      if (w.has_offsets()) v = _mm512_fmadd_ps(of[j], xs, v);
      _mm512_store_ps(p, v);
    }
  }
}

template <int MR, int NT>
PARE_MM_TARGET inline void micro_int8(const packed_int8& w, const matmul_acts& a, std::size_t m0, std::size_t t0,
                                      float* part) noexcept {
  const std::size_t quads = w.kp / 4, gq = w.padded_group() / 4;
  const std::int8_t* codes = w.codes.data() + t0 * quads * 64;
  for (std::size_t g = 0; g < w.groups; ++g) {
    __m512i acc[MR][NT];
    PARE_UNROLL
    for (int r = 0; r < MR; ++r)
      PARE_UNROLL
      for (int j = 0; j < NT; ++j) acc[r][j] = _mm512_setzero_si512();
    for (std::size_t q = g * gq; q < (g + 1) * gq; ++q) {
      w8 wv[NT];
      PARE_UNROLL
      for (int j = 0; j < NT; ++j) wv[j] = prep8(_mm512_load_si512(codes + (j * quads + q) * 64));
      PARE_UNROLL
      for (int r = 0; r < MR; ++r) {
        std::int32_t u, s;
        std::memcpy(&u, a.qu + (m0 + r) * a.ld + 4 * q, 4);
        std::memcpy(&s, a.q + (m0 + r) * a.ld + 4 * q, 4);
        const __m512i xu = _mm512_set1_epi32(u), xq = _mm512_set1_epi32(s);
        PARE_UNROLL
        for (int j = 0; j < NT; ++j) acc[r][j] = dot8(acc[r][j], wv[j], xu, xq);
      }
    }
    PARE_UNROLL
    for (int j = 0; j < NT; ++j) {
      const __m512i cs = _mm512_load_si512(w.csum.data() + ((t0 + j) * w.groups + g) * matmul_tile_rows);
      PARE_UNROLL
      for (int r = 0; r < MR; ++r) acc[r][j] = fix8(acc[r][j], cs);
    }
    epilogue<MR, NT>(w, a, m0, t0, g, acc, part);
  }
}

template <int MR, int NT>
PARE_MM_TARGET inline void micro_int4(const packed_int4& w, const matmul_acts& a, std::size_t m0, std::size_t t0,
                                      float* part) noexcept {
  const std::size_t go = w.padded_group() / 8;
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (std::size_t g = 0; g < w.groups; ++g) {
    __m512i acc[MR][NT];
    PARE_UNROLL
    for (int r = 0; r < MR; ++r)
      PARE_UNROLL
      for (int j = 0; j < NT; ++j) acc[r][j] = _mm512_setzero_si512();
    const std::uint8_t* blocks[NT];
    PARE_UNROLL
    for (int j = 0; j < NT; ++j) blocks[j] = w.block(t0 + j, g, 0);
    for (std::size_t o = g * go; o < (g + 1) * go; ++o) {
      __m512i lo[NT], hi[NT];
      PARE_UNROLL
      for (int j = 0; j < NT; ++j) {
        const __m512i b = _mm512_load_si512(blocks[j] + (o - g * go) * 64);
        lo[j] = _mm512_and_si512(b, low);
        hi[j] = _mm512_and_si512(_mm512_srli_epi16(b, 4), low);
      }
      PARE_UNROLL
      for (int r = 0; r < MR; ++r) {
        std::int32_t s0, s1;
        std::memcpy(&s0, a.q + (m0 + r) * a.ld + 8 * o, 4);
        std::memcpy(&s1, a.q + (m0 + r) * a.ld + 8 * o + 4, 4);
        const __m512i x0 = _mm512_set1_epi32(s0), x1 = _mm512_set1_epi32(s1);
        PARE_UNROLL
        for (int j = 0; j < NT; ++j) acc[r][j] = dot4(dot4(acc[r][j], lo[j], x0), hi[j], x1);
      }
    }
    epilogue<MR, NT>(w, a, m0, t0, g, acc, part);
  }
}

/// Writes y[m][16·t + c] = sx[m] · part[c] for the columns that exist.
PARE_MM_TARGET PARE_ALWAYS_INLINE void store_row(const packed_weights_base& w, const matmul_acts& a,
                                                 const matmul_block& b, std::size_t m, std::size_t t,
                                                 const float* part) noexcept {
  const std::size_t c0 = t * matmul_tile_rows, valid = std::min<std::size_t>(16, w.n - c0);
  const __m512 v = _mm512_mul_ps(_mm512_load_ps(part), _mm512_set1_ps(a.sx[m]));
  _mm512_mask_storeu_ps(b.y + m * b.ldy + c0, static_cast<__mmask16>((1u << valid) - 1u), v);
}

/// MR-row micro-tiles of J tiles starting at tile t, over rows [m0, m1).
template <int MR, int J, class Packed>
PARE_MM_TARGET inline void tiles_impl(const Packed& w, const matmul_acts& a, const matmul_block& b,
                                      std::size_t t) noexcept {
  alignas(64) float part[MR * J * 16];
  for (std::size_t m = b.m0; m < b.m1; m += MR) {
    const std::size_t mr = std::min<std::size_t>(MR, b.m1 - m);
    std::fill(part, part + MR * J * 16, 0.0f);
    auto run = [&](auto rows) {
      constexpr int R = decltype(rows)::value;
      if constexpr (std::is_same_v<Packed, packed_int8>)
        micro_int8<R, J>(w, a, m, t, part);
      else
        micro_int4<R, J>(w, a, m, t, part);
    };
    if (mr == MR) {
      run(std::integral_constant<int, MR>{});
    } else {
      static_assert(MR <= 8, "tiles_impl: MR above 8 needs more tail cases");
      switch (mr) {  // the last, shorter row block
        case 1: run(std::integral_constant<int, 1>{}); break;
        case 2: if constexpr (MR > 2) run(std::integral_constant<int, (MR > 2 ? 2 : 1)>{}); break;
        case 3: if constexpr (MR > 3) run(std::integral_constant<int, (MR > 3 ? 3 : 1)>{}); break;
        case 4: if constexpr (MR > 4) run(std::integral_constant<int, (MR > 4 ? 4 : 1)>{}); break;
        case 5: if constexpr (MR > 5) run(std::integral_constant<int, (MR > 5 ? 5 : 1)>{}); break;
        case 6: if constexpr (MR > 6) run(std::integral_constant<int, (MR > 6 ? 6 : 1)>{}); break;
        case 7: if constexpr (MR > 7) run(std::integral_constant<int, (MR > 7 ? 7 : 1)>{}); break;
        default: break;
      }
    }
    // A micro-kernel of R rows wrote part[(r·J + j)·16] for r < R.
    for (std::size_t r = 0; r < mr; ++r)
      for (int j = 0; j < J; ++j) store_row(w, a, b, m + r, t + j, part + (r * J + j) * 16);
  }
}

/// Rows [m0, m1) × tiles [t0, t1): NT tiles at a time (single tiles at the end).
template <int MR, int NT, class Packed>
PARE_MM_TARGET inline void block_impl(const Packed& w, const matmul_acts& a, const matmul_block& b) noexcept {
  std::size_t t = b.t0;
  for (; t + NT <= b.t1; t += NT) tiles_impl<MR, NT>(w, a, b, t);
  for (; t < b.t1; ++t) tiles_impl<MR, 1>(w, a, b, t);
}
