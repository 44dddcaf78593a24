// Row kernels: every ISA variant against the scalar reference bit for bit; the reference against a float64 oracle.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "pare/kernels/quantize_row.hpp"
#include "pare_test_support.hpp"

namespace pk = pare::kernels;

namespace {

// The levels that have a row-kernel variant in this build.
constexpr pare::isa row_variants =
#if PARE_HAS_X86_KERNELS
    pare::isa::avx512bw | pare::isa::avx2 | pare::isa::sse4_1 | pare::isa::scalar;
#elif defined(__aarch64__)
    pare::isa::neon | pare::isa::scalar;
#else
    pare::isa::scalar;
#endif

// The variant the dispatcher must run when every level up to `level` is enabled.
pare::isa expected_variant(pare::isa level) {
  for (pare::isa l : pare::all_isas_best_first)
    if (pare::has(pare::with_lower_levels(level) & row_variants, l)) return l;
  return pare::isa::scalar;
}

// Runs f(level, expected) with kernels restricted to each detected level in turn.
template <class F>
void each_isa(F&& f) {
  pare::for_each_isa(pare::detected_isas(), [&](pare::isa level) {
    pare::set_enabled_isas(pare::with_lower_levels(level));
    f(level, expected_variant(level));
  });
  pare::reset_enabled_isas();
}

const std::vector<std::size_t>& sizes() {
  static const std::vector<std::size_t> s = [] {
    std::vector<std::size_t> v;
    for (std::size_t n = 0; n <= 17; ++n) v.push_back(n);
    for (std::size_t n : {31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 4095, 4096, 4097}) v.push_back(n);
    return v;
  }();
  return s;
}

// One row with its per-group parameters.
struct row_case {
  std::size_t n = 0, group = 1;
  pare::int_format fmt;
  std::string mode;
  std::vector<float> x, scale, inv;
  std::vector<std::int32_t> zero;

  pk::row_qparams params() const {
    pk::row_qparams p;
    p.scale = scale.data();
    p.inv_scale = inv.data();
    p.zero = zero.data();
    p.group = group;
    p.qmin = fmt.qmin();
    p.qmax = fmt.qmax();
    return p;
  }
  std::string str() const {
    std::ostringstream os;
    os << "n=" << n << " group=" << group << " format=" << fmt.str() << " mode=" << mode;
    return os.str();
  }
};

// Per-group parameters from each group's min/max (pare::params_from_range).
void params_from_data(row_case& c, pare::scheme_kind scheme) {
  const std::size_t groups = c.n == 0 ? 1 : (c.n + c.group - 1) / c.group;
  for (std::size_t g = 0; g < groups; ++g) {
    double lo = 0, hi = 0;
    for (std::size_t i = g * c.group; i < std::min(c.n, (g + 1) * c.group); ++i) {
      lo = std::min(lo, double(c.x[i]));
      hi = std::max(hi, double(c.x[i]));
    }
    const pare::qparams q = pare::params_from_range(lo, hi, c.fmt, scheme);
    c.scale.push_back(q.scale);
    c.inv.push_back(pare::inverse_scale(q.scale));
    c.zero.push_back(q.zero_point);
  }
}

// Modes: gaussian data with symmetric / asymmetric parameters from its range; exact
// ties k + 0.5 under power-of-two scales with huge values and signed zeros mixed in;
// an all-zero row.
row_case make_case(std::size_t n, std::size_t group, pare::int_format fmt, int mode, std::uint64_t seed) {
  row_case c;
  c.n = n;
  c.group = group;
  c.fmt = fmt;
  switch (mode) {
    case 0:
      c.mode = "gaussian/sym";
      c.x = pare_test::gaussian(n, seed, 2.0, 0.3);
      params_from_data(c, pare::scheme_kind::symmetric);
      break;
    case 1:
      c.mode = "uniform/asym";
      c.x = pare_test::uniform(n, seed, -0.7, 3.1);
      params_from_data(c, pare::scheme_kind::asymmetric);
      break;
    case 2: {
      c.mode = "ties/pow2";
      const std::size_t groups = n == 0 ? 1 : (n + group - 1) / group;
      const int levels = fmt.qmax() - fmt.qmin() + 1;
      for (std::size_t g = 0; g < groups; ++g) {
        const float s = std::ldexp(1.0f, -2 - int(g % 3));
        c.scale.push_back(s);
        c.inv.push_back(pare::inverse_scale(s));
        c.zero.push_back(g % 2 ? fmt.sym_zero() : fmt.qmin() + int((g * 5) % std::size_t(levels)));
      }
      c.x.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t g = i / group;
        // v = x / s runs over [qmin - z - 3, qmax - z + 3): ties inside and beyond the clip range
        const int k = int((i * 7) % std::size_t(levels + 6)) + fmt.qmin() - c.zero[g] - 3;
        float v = (float(k) + 0.5f) * c.scale[g];
        if (i % 17 == 5) v = float(k) * c.scale[g];
        if (i % 11 == 3) v = (i / 11) % 2 ? -0.0f : 0.0f;
        if (i % 13 == 7) v = (i / 13) % 2 ? -3e38f : 3e38f;
        c.x[i] = v;
      }
      break;
    }
    default:
      c.mode = "zeros";
      c.x.assign(n, 0.0f);
      for (std::size_t i = 1; i < n; i += 2) c.x[i] = -0.0f;
      params_from_data(c, (seed & 1) ? pare::scheme_kind::symmetric : pare::scheme_kind::asymmetric);
      break;
  }
  return c;
}

std::vector<std::size_t> group_choices(std::size_t n) {
  return {1, 3, 7, 16, 32, 64, 128, std::max<std::size_t>(n, 1)};
}

// Calls f(case) for every size x group x format (bits 2..max_bits, both signs) x mode.
template <class F>
void each_case(int max_bits, F&& f) {
  std::uint64_t seed = 1;
  for (std::size_t n : sizes())
    for (std::size_t group : group_choices(n))
      for (int bits = 2; bits <= max_bits; ++bits)
        for (bool sgn : {true, false})
          for (int mode = 0; mode < 4; ++mode) f(make_case(n, group, pare::int_format{bits, sgn}, mode, seed++));
}

// An output buffer placed `off` elements past a 64-byte boundary inside a guarded
// allocation: the bytes around the n elements must stay untouched.
template <class T>
class guarded {
 public:
  guarded(std::size_t n, std::size_t off) : buf_((n + off + 32) * sizeof(T) + 64, 0xA5) {
    const std::size_t base = (64 - reinterpret_cast<std::uintptr_t>(buf_.data()) % 64) % 64;
    begin_ = base + off * sizeof(T);
    end_ = begin_ + n * sizeof(T);
  }
  T* data() { return reinterpret_cast<T*>(buf_.data() + begin_); }
  const T* data() const { return reinterpret_cast<const T*>(buf_.data() + begin_); }
  bool intact() const {
    for (std::size_t b = 0; b < buf_.size(); ++b)
      if ((b < begin_ || b >= end_) && buf_[b] != 0xA5) return false;
    return true;
  }

 private:
  std::vector<unsigned char> buf_;
  std::size_t begin_ = 0, end_ = 0;
};

// Input copied to an address `off` elements past an aligned allocation start.
template <class T>
class shifted {
 public:
  shifted(const T* src, std::size_t n, std::size_t off) : off_(off), buf_(n + off + 1) {
    if (n) std::memcpy(buf_.data() + off, src, n * sizeof(T));
  }
  const T* data() const { return buf_.data() + off_; }

 private:
  std::size_t off_;
  std::vector<T> buf_;
};

// Collects mismatches; reports the first few in detail.
class tally {
 public:
  template <class T>
  void compare(const char* op, const std::string& what, pare::isa level, const T* want, const T* got, std::size_t n,
               bool guards_intact) {
    ++comparisons_;
    std::size_t bad = n;
    for (std::size_t i = 0; i < n && bad == n; ++i)
      if (std::memcmp(want + i, got + i, sizeof(T)) != 0) bad = i;
    if (bad == n && guards_intact) return;
    ++failures_;
    if (failures_ > 10) return;
    std::ostringstream os;
    os << op << " [" << pare::to_string(level) << "] " << what << ": ";
    if (bad != n)
      os << "element " << bad << " want " << +want[bad] << " got " << +got[bad];
    else
      os << "wrote outside its output";
    FAIL_CHECK(os.str());
  }
  void isa(const char* op, pare::isa level, pare::isa expected) {
    const pare::isa used = pare::last_used_isa();
    if (used == expected) return;
    ++failures_;
    if (failures_ > 10) return;
    FAIL_CHECK(op << " with levels up to " << pare::to_string(level) << " ran " << pare::to_string(used)
                  << ", expected " << pare::to_string(expected));
  }
  void done() {
    CHECK(failures_ == 0);
    CHECK(comparisons_ > 0);
  }

 private:
  std::size_t failures_ = 0, comparisons_ = 0;
};

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed) {
  pare::splitmix64 g(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(g.next() >> 56);
  return v;
}

}  // namespace

TEST_CASE("quantize_row, dequantize_row and fake_quant_row equal the reference on every ISA") {
  tally t;
  std::uint64_t seed = 100;
  each_case(8, [&](const row_case& c) {
    const pk::row_qparams p = c.params();
    const std::size_t n = c.n;
    const std::string what = c.str();
    std::vector<std::uint8_t> codes_ref(n + 1);
    std::vector<float> fake_ref(n + 1), deq_ref(n + 1);
    pk::ref::quantize_row(c.x.data(), n, p, codes_ref.data());
    pk::ref::fake_quant_row(c.x.data(), n, p, fake_ref.data());
    const std::vector<std::uint8_t> rnd = random_bytes(n, seed++);  // every code byte, not only valid ones
    pk::ref::dequantize_row(rnd.data(), n, p, c.fmt.is_signed, deq_ref.data());
    const shifted<float> x(c.x.data(), n, 1);
    const shifted<std::uint8_t> in_codes(rnd.data(), n, 1);
    each_isa([&](pare::isa level, pare::isa expected) {
      guarded<std::uint8_t> codes(n, 1);
      pk::quantize_row(x.data(), n, p, codes.data());
      t.isa("quantize_row", level, expected);
      t.compare("quantize_row", what, level, codes_ref.data(), codes.data(), n, codes.intact());

      guarded<float> y(n, 3);
      pk::fake_quant_row(x.data(), n, p, y.data());
      t.isa("fake_quant_row", level, expected);
      t.compare("fake_quant_row", what, level, fake_ref.data(), y.data(), n, y.intact());

      guarded<float> d(n, 3);
      pk::dequantize_row(in_codes.data(), n, p, c.fmt.is_signed, d.data());
      t.isa("dequantize_row", level, expected);
      t.compare("dequantize_row", what, level, deq_ref.data(), d.data(), n, d.intact());

      for (std::size_t off : {0, 3}) {  // 64-byte aligned and not: the non-temporal part and the peel
        guarded<float> ys(n, off);
        pk::fake_quant_row_streaming(x.data(), n, p, ys.data());
        t.isa("fake_quant_row_streaming", level, expected);
        t.compare("fake_quant_row_streaming", what, level, fake_ref.data(), ys.data(), n, ys.intact());
        guarded<float> ds(n, off);
        pk::dequantize_row_streaming(in_codes.data(), n, p, c.fmt.is_signed, ds.data());
        t.isa("dequantize_row_streaming", level, expected);
        t.compare("dequantize_row_streaming", what, level, deq_ref.data(), ds.data(), n, ds.intact());
      }
    });
  });
  t.done();
}

TEST_CASE("fake_quant_row and fake_quant_row_streaming may write in place") {
  const row_case c = make_case(1000, 64, pare::int_format{4, false}, 1, 7);
  const pk::row_qparams p = c.params();
  std::vector<float> want(c.n);
  pk::ref::fake_quant_row(c.x.data(), c.n, p, want.data());
  each_isa([&](pare::isa level, pare::isa) {
    INFO(pare::to_string(level));
    std::vector<float> y = c.x, ys = c.x;
    pk::fake_quant_row(y.data(), c.n, p, y.data());
    pk::fake_quant_row_streaming(ys.data(), c.n, p, ys.data());
    CHECK(std::memcmp(y.data(), want.data(), c.n * sizeof(float)) == 0);
    CHECK(std::memcmp(ys.data(), want.data(), c.n * sizeof(float)) == 0);
  });
}

TEST_CASE("quantize_row_stochastic equals the reference on every ISA for several keys and column offsets") {
  tally t;
  const std::uint32_t col0s[] = {0u, 5u, 0xFFFFFFF0u};  // the last wraps the column counter
  std::uint64_t k = 0;
  each_case(8, [&](const row_case& c) {
    if (c.mode == "zeros" && c.fmt.bits != 8) return;  // keep the run short: zeros add little here
    const pk::row_qparams p = c.params();
    const std::size_t n = c.n;
    const std::uint32_t key = pare::row_key(k, k * 3 + 1), col0 = col0s[k % 3];
    ++k;
    std::vector<std::uint8_t> want(n + 1);
    pk::ref::quantize_row_stochastic(c.x.data(), n, p, key, col0, want.data());
    const shifted<float> x(c.x.data(), n, 1);
    each_isa([&](pare::isa level, pare::isa expected) {
      guarded<std::uint8_t> codes(n, 1);
      pk::quantize_row_stochastic(x.data(), n, p, key, col0, codes.data());
      t.isa("quantize_row_stochastic", level, expected);
      t.compare("quantize_row_stochastic", c.str() + " key=" + std::to_string(key) + " col0=" + std::to_string(col0),
                level, want.data(), codes.data(), n, codes.intact());
    });
  });
  t.done();
}

TEST_CASE("quantize_row_int4 and dequantize_row_int4 equal the reference on every ISA") {
  tally t;
  std::uint64_t seed = 500;
  each_case(4, [&](const row_case& c) {
    const pk::row_qparams p = c.params();
    const std::size_t n = c.n, bytes = (n + 1) / 2;
    std::vector<std::uint8_t> want(bytes + 1);
    pk::ref::quantize_row_int4(c.x.data(), n, p, want.data());
    std::vector<std::uint8_t> packed_in = random_bytes(bytes, seed++);
    if (n % 2) packed_in[bytes - 1] &= 0x0F;
    std::vector<float> deq_want(n + 1);
    pk::ref::dequantize_row_int4(packed_in.data(), n, p, c.fmt.is_signed, deq_want.data());
    const shifted<float> x(c.x.data(), n, 1);
    const shifted<std::uint8_t> packed(packed_in.data(), bytes, 1);
    each_isa([&](pare::isa level, pare::isa expected) {
      guarded<std::uint8_t> out(bytes, 1);
      pk::quantize_row_int4(x.data(), n, p, out.data());
      t.isa("quantize_row_int4", level, expected);
      t.compare("quantize_row_int4", c.str(), level, want.data(), out.data(), bytes, out.intact());

      guarded<float> y(n, 3);
      pk::dequantize_row_int4(packed.data(), n, p, c.fmt.is_signed, y.data());
      t.isa("dequantize_row_int4", level, expected);
      t.compare("dequantize_row_int4", c.str(), level, deq_want.data(), y.data(), n, y.intact());

      guarded<float> ys(n, 0);
      pk::dequantize_row_int4_streaming(packed.data(), n, p, c.fmt.is_signed, ys.data());
      t.isa("dequantize_row_int4_streaming", level, expected);
      t.compare("dequantize_row_int4_streaming", c.str(), level, deq_want.data(), ys.data(), n, ys.intact());
    });
  });
  t.done();
}

TEST_CASE("reference int4 kernels are quantize_row / dequantize_row plus the documented nibble order") {
  for (std::size_t n : {0, 1, 2, 7, 64, 129}) {
    for (bool sgn : {true, false}) {
      const row_case c = make_case(n, 3, pare::int_format{4, sgn}, 0, n + 11);
      const pk::row_qparams p = c.params();
      std::vector<std::uint8_t> codes(n + 1), packed((n + 1) / 2 + 1, 0xEE);
      pk::ref::quantize_row(c.x.data(), n, p, codes.data());
      pk::ref::quantize_row_int4(c.x.data(), n, p, packed.data());
      for (std::size_t i = 0; i < n; ++i) {
        const unsigned nib = (packed[i / 2] >> (i % 2 ? 4 : 0)) & 0xFu;
        REQUIRE(nib == (codes[i] & 0xFu));
      }
      if (n % 2) CHECK((packed[n / 2] >> 4) == 0);
      CHECK(packed[(n + 1) / 2] == 0xEE);  // nothing past (n + 1) / 2 bytes
      std::vector<float> a(n + 1), b(n + 1);
      pk::ref::dequantize_row(codes.data(), n, p, sgn, a.data());
      pk::ref::dequantize_row_int4(packed.data(), n, p, sgn, b.data());
      CHECK(std::memcmp(a.data(), b.data(), n * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("scan_row equals the reference on every ISA, including NaN/Inf positions and signed zeros") {
  struct scan_case {
    std::string what;
    std::vector<float> x;
  };
  std::vector<scan_case> cases;
  std::uint64_t seed = 900;
  for (std::size_t n : sizes()) {
    const auto base = pare_test::gaussian(n, seed++, 3.0, 0.5);
    cases.push_back({"gaussian n=" + std::to_string(n), base});
    std::vector<float> neg = base;
    for (auto& v : neg) v = -std::fabs(v) - 1.0f;
    cases.push_back({"all negative n=" + std::to_string(n), neg});
    if (n == 0) continue;
    for (std::size_t pos : {std::size_t(0), n / 2, n - 1}) {
      for (float bad : {NAN, INFINITY, -INFINITY}) {
        std::vector<float> v = base;
        v[pos] = bad;
        if (pos + 3 < n) v[pos + 3] = NAN;  // a later one must not win
        cases.push_back(
            {"non-finite " + std::to_string(bad) + " at " + std::to_string(pos) + " n=" + std::to_string(n), v});
      }
    }
    std::vector<float> z(n, 0.0f), nz(n, -0.0f), mixed(n, 0.0f), pos0 = base;
    for (std::size_t i = 0; i < n; i += 3) mixed[i] = -0.0f;
    for (auto& v : pos0) v = std::fabs(v);
    pos0[n / 2] = 0.0f;
    std::vector<float> neg0 = pos0;
    neg0[n - 1] = -0.0f;
    cases.push_back({"+0 n=" + std::to_string(n), z});
    cases.push_back({"-0 n=" + std::to_string(n), nz});
    cases.push_back({"mixed zeros n=" + std::to_string(n), mixed});
    cases.push_back({"non-negative with +0 n=" + std::to_string(n), pos0});
    cases.push_back({"non-negative with +0 and a last -0 n=" + std::to_string(n), neg0});
    std::vector<float> negz = neg;
    negz[0] = 0.0f;
    negz[n - 1] = -0.0f;
    cases.push_back({"non-positive with both zeros n=" + std::to_string(n), negz});
  }
  tally t;
  for (const auto& c : cases) {
    const std::size_t n = c.x.size();
    const pk::row_stats want = pk::ref::scan_row(c.x.data(), n);
    const shifted<float> x(c.x.data(), n, 1);
    each_isa([&](pare::isa level, pare::isa expected) {
      const pk::row_stats got = pk::scan_row(x.data(), n);
      t.isa("scan_row", level, expected);
      const float w[2] = {want.min, want.max}, g[2] = {got.min, got.max};
      t.compare("scan_row min/max", c.what, level, w, g, 2, true);
      const std::size_t wi = want.first_nonfinite, gi = got.first_nonfinite;
      t.compare("scan_row first_nonfinite", c.what, level, &wi, &gi, 1, true);
    });
  }
  t.done();
}

TEST_CASE("every row kernel handles every tail length and misaligned pointers on every ISA") {
  // The widest vector holds 16 floats and the quantize loop takes 4 vectors at a time, so
  // n = 0..131 covers every tail of every loop (full, unrolled, partial) on every ISA.
  // Inputs and outputs sit 0..15 elements past a 64-byte boundary: every head length of
  // the non-temporal stores and every misalignment of code bytes; groups: one segment,
  // narrower than a vector (expanded parameters), per element.
  tally t;
  std::uint64_t seed = 3000;
  const std::size_t offsets[] = {0, 1, 2, 3, 5, 7, 8, 11, 15};
  for (std::size_t n = 0; n <= 131; ++n) {
    for (std::size_t group : {std::max<std::size_t>(n, 1), std::size_t(16), std::size_t(3), std::size_t(1)}) {
      for (const pare::int_format fmt : {pare::int_format{8, true}, pare::int_format{4, false}}) {
        const row_case c = make_case(n, group, fmt, int(seed % 3), seed);
        ++seed;
        const pk::row_qparams p = c.params();
        const std::string what = c.str();
        const std::size_t bytes = (n + 1) / 2;
        const std::uint32_t key = pare::row_key(seed, 7), col0 = std::uint32_t(seed * 13);
        std::vector<std::uint8_t> codes_ref(n + 1), stoch_ref(n + 1), int4_ref(bytes + 1);
        std::vector<float> fake_ref(n + 1), deq_ref(n + 1), deq4_ref(n + 1);
        pk::ref::quantize_row(c.x.data(), n, p, codes_ref.data());
        pk::ref::quantize_row_stochastic(c.x.data(), n, p, key, col0, stoch_ref.data());
        pk::ref::quantize_row_int4(c.x.data(), n, p, int4_ref.data());
        pk::ref::fake_quant_row(c.x.data(), n, p, fake_ref.data());
        const std::vector<std::uint8_t> rnd = random_bytes(n + 1, seed);
        pk::ref::dequantize_row(rnd.data(), n, p, fmt.is_signed, deq_ref.data());
        pk::ref::dequantize_row_int4(rnd.data(), n, p, fmt.is_signed, deq4_ref.data());
        const pk::row_stats scan_ref = pk::ref::scan_row(c.x.data(), n);
        for (std::size_t off : offsets) {
          const shifted<float> x(c.x.data(), n, off);
          const shifted<std::uint8_t> in(rnd.data(), n + 1, off);
          const std::string w = what + " offset=" + std::to_string(off);
          each_isa([&](pare::isa level, pare::isa expected) {
            guarded<std::uint8_t> q(n, off), qs(n, off), q4(bytes, off);
            pk::quantize_row(x.data(), n, p, q.data());
            t.isa("quantize_row", level, expected);
            t.compare("quantize_row", w, level, codes_ref.data(), q.data(), n, q.intact());
            pk::quantize_row_stochastic(x.data(), n, p, key, col0, qs.data());
            t.compare("quantize_row_stochastic", w, level, stoch_ref.data(), qs.data(), n, qs.intact());
            pk::quantize_row_int4(x.data(), n, p, q4.data());
            t.compare("quantize_row_int4", w, level, int4_ref.data(), q4.data(), bytes, q4.intact());

            guarded<float> f(n, off), fs(n, off), d(n, off), ds(n, off), d4(n, off), d4s(n, off);
            pk::fake_quant_row(x.data(), n, p, f.data());
            t.compare("fake_quant_row", w, level, fake_ref.data(), f.data(), n, f.intact());
            pk::fake_quant_row_streaming(x.data(), n, p, fs.data());
            t.compare("fake_quant_row_streaming", w, level, fake_ref.data(), fs.data(), n, fs.intact());
            pk::dequantize_row(in.data(), n, p, fmt.is_signed, d.data());
            t.compare("dequantize_row", w, level, deq_ref.data(), d.data(), n, d.intact());
            pk::dequantize_row_streaming(in.data(), n, p, fmt.is_signed, ds.data());
            t.compare("dequantize_row_streaming", w, level, deq_ref.data(), ds.data(), n, ds.intact());
            if (fmt.bits <= 4) {
              pk::dequantize_row_int4(in.data(), n, p, fmt.is_signed, d4.data());
              t.compare("dequantize_row_int4", w, level, deq4_ref.data(), d4.data(), n, d4.intact());
              pk::dequantize_row_int4_streaming(in.data(), n, p, fmt.is_signed, d4s.data());
              t.compare("dequantize_row_int4_streaming", w, level, deq4_ref.data(), d4s.data(), n, d4s.intact());
            }
            const pk::row_stats s = pk::scan_row(x.data(), n);
            t.isa("scan_row", level, expected);
            const float want[3] = {scan_ref.min, scan_ref.max, float(scan_ref.first_nonfinite)};
            const float got[3] = {s.min, s.max, float(s.first_nonfinite)};
            t.compare("scan_row", w, level, want, got, 3, true);
          });
        }
      }
    }
  }
  t.done();
}

TEST_CASE("reference scan_row: finite min/max, first non-finite index, -0.0 < +0.0") {
  const std::vector<float> x = {1.0f, -0.0f, NAN, 2.0f, 0.0f, INFINITY, -3.0f};
  const pk::row_stats s = pk::ref::scan_row(x.data(), x.size());
  CHECK(s.min == -3.0f);
  CHECK(s.max == 2.0f);
  CHECK(s.first_nonfinite == 2);
  const std::vector<float> zeros = {0.0f, -0.0f, 0.0f};
  const pk::row_stats z = pk::ref::scan_row(zeros.data(), zeros.size());
  CHECK(std::signbit(z.min));
  CHECK_FALSE(std::signbit(z.max));
  const std::vector<float> nz = {-0.0f, 5.0f};
  CHECK(std::signbit(pk::ref::scan_row(nz.data(), nz.size()).min));
  const pk::row_stats e = pk::ref::scan_row(nullptr, 0);
  CHECK(e.min == INFINITY);
  CHECK(e.max == -INFINITY);
  CHECK(e.first_nonfinite == 0);
}

TEST_CASE("reference nearest rounding: within s/2 of x inside the clip range (float64 oracle), ties to even") {
  std::size_t checked = 0, bad = 0;
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool sgn : {true, false}) {
      for (int mode = 0; mode < 3; ++mode) {
        const row_case c = make_case(4096, 128, pare::int_format{bits, sgn}, mode, std::uint64_t(bits * 10 + mode));
        const pk::row_qparams p = c.params();
        std::vector<std::uint8_t> codes(c.n);
        pk::ref::quantize_row(c.x.data(), c.n, p, codes.data());
        for (std::size_t i = 0; i < c.n; ++i) {
          const std::size_t g = i / c.group;
          const int q = sgn ? int(static_cast<std::int8_t>(codes[i])) : int(codes[i]);
          const double s = c.scale[g], z = c.zero[g], x = c.x[i];
          if (q < c.fmt.qmin() || q > c.fmt.qmax()) ++bad;
          const double lo = (c.fmt.qmin() - z) * s, hi = (c.fmt.qmax() - z) * s;
          if (x < lo || x > hi) {
            if (q != (x < lo ? c.fmt.qmin() : c.fmt.qmax())) ++bad;  // clamped to the nearest end
            continue;
          }
          // power-of-two scales (mode 2): x * inv is exact, so the bound is exact and ties go to even
          const bool exact = mode == 2;
          const double err = std::fabs(x - (q - z) * s);
          const double tol = s / 2 * (1 + 1e-6) + (exact ? 0.0 : std::ldexp(std::fabs(x), -21));
          if (err > tol) ++bad;
          if (exact && std::fabs(err - s / 2) == 0 && (q - c.zero[g]) % 2 != 0) ++bad;
          ++checked;
        }
      }
    }
  }
  CHECK(checked > 100000);
  CHECK(bad == 0);
}

TEST_CASE("stochastic rounding is unbiased: the mean code over many keys is x / s") {
  const float s = 0.125f, inv = pare::inverse_scale(s);
  const std::int32_t z = 0;
  pk::row_qparams p;
  p.scale = &s;
  p.inv_scale = &inv;
  p.zero = &z;
  p.group = 64;
  p.qmin = -128;
  p.qmax = 127;
  std::vector<float> x(64);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = (float(int(i) - 32) + float(i % 8) / 8.0f + 0.03f) * s;
  const int keys = 8000;
  std::vector<double> sum(x.size(), 0.0);
  std::vector<std::uint8_t> codes(x.size());
  for (int k = 0; k < keys; ++k) {
    pk::quantize_row_stochastic(x.data(), x.size(), p, pare::row_key(2024, std::uint64_t(k)), 0, codes.data());
    for (std::size_t i = 0; i < x.size(); ++i) sum[i] += int(static_cast<std::int8_t>(codes[i]));
  }
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(sum[i] / keys - double(x[i]) / s));
  INFO("largest |mean code - x/s| = " << worst);
  CHECK(worst < 0.025);  // sd of one mean <= 0.5 / sqrt(8000) = 0.0056
}
