#!/usr/bin/python3
# Writes fake_quant_refs.inc: PyTorch's fake-quant forward outputs and gradients for tests/quant/test_fake_quant.cpp.
#
# Run with Debian's torch (apt-get install python3-torch; torch 1.13):
#     /usr/bin/python3 tests/quant/data/make_fake_quant_refs.py
# Deterministic: a fixed numpy seed, float32 arithmetic for every constructed input, and
# torch's portable CPU kernels (ATEN_CPU_CAPABILITY=default, set below before torch is
# imported): its AVX2 / AVX-512 kernels are compiled with FMA contraction, which changes
# last bits of the learnable gradients and the rounding of exact ties in its backward,
# so the file would depend on the machine that wrote it.
#
# Per case (one pare matrix rows x cols with pare's parameter layout):
#   y        torch.fake_quantize_per_{tensor,channel}_affine(x)       (forward, bit-exact target)
#   mask     its x-gradient with dy = 1 ('1' where the STE passes)    (the non-learnable op's mask)
#   lmask, dscale_e, dzp_e
#            torch._fake_quantize_learnable_per_channel_affine on x reshaped to (N, 1), axis 0,
#            every element its own channel carrying its group's (scale, zero point): the
#            per-element x-mask and scale / zero-point gradients of the learnable op, with
#            the case's dy and grad_factor
#   dscale, dzp
#            the learnable op on the real grouping (per tensor, per channel, or per group via
#            a reshape to (rows * cols / G, G) with axis 0): the summed gradients per entry
#   op_sums_trusted
#            false for per-tensor cases with a negative zero point: torch 1.13's per-tensor
#            learnable backward reads the zero point as int(z + 0.5), i.e. z + 1 for z < 0,
#            so its sums are not those of its own forward (the per-element path rounds z
#            correctly and stays the reference there)
# Inputs mix Gaussian values over the clip range with constructed ones: exact ties
# x * (1/s) = k + 0.5 (inside and on both range edges), values within half a step outside
# the range (inside for PyTorch's rounded-code test, outside for LSQ's), values just beyond
# half a step, and large outliers. Exact ties are placed only in groups with an even zero
# point, except in cases named *_oddties: torch 1.13's learnable kernels form the code as
# nearbyint(z + x * (1/s)) instead of the forward's nearbyint(x * (1/s)) + z, which differ
# on exact ties when z is odd (see pare/quant/fake_quant.hpp).

import os

os.environ["ATEN_CPU_CAPABILITY"] = "default"

import numpy as np  # noqa: E402
import torch  # noqa: E402

F = np.float32
rng = np.random.RandomState(20260614)


def inv(s):
    return F(F(1.0) / F(s))


def x_for(v, s):
    """A float32 x with float32(x * (1/s)) == v exactly (searched around v * s), or None."""
    x0 = F(np.float64(v) * np.float64(s))
    cand = [x0]
    up = dn = x0
    for _ in range(8):
        up = np.nextafter(up, F(np.inf))
        dn = np.nextafter(dn, F(-np.inf))
        cand += [up, dn]
    for c in cand:
        if F(c * inv(s)) == F(v):
            return F(c)
    return None


def values_for(n, s, z, qmin, qmax, ties, rs):
    """n float32 inputs for a group with scale s and zero point z."""
    lo, hi = qmin - z, qmax - z
    targets = []  # (v, exact)
    if ties:
        mid = (lo + hi) // 2
        targets += [(mid + 0.5, True), (mid - 1.5, True), (hi - 0.5, True), (hi + 0.5, True), (lo - 0.5, True),
                    (lo + 0.5, True)]
    targets += [(hi + 0.3, False), (hi + 0.49, False), (lo - 0.3, False), (lo - 0.49, False), (hi + 0.51, False),
                (lo - 0.51, False), (hi + 1000.25, False), (lo - 777.75, False), (0.0, True)]
    out = []
    for v, exact in targets:
        if exact:
            x = x_for(v, s)
            if x is not None:
                out.append(x)
        else:
            out.append(F(np.float64(v) * np.float64(s)))
    while len(out) < n:
        out.append(F(rs.uniform(lo - 1.5, hi + 1.5) * s))
    out = out[:n]
    rs.shuffle(out)
    return out


def hexf(v):
    v = float(F(v))
    if v == 0.0:
        return "-0.0f" if np.signbit(v) else "0.0f"
    h = v.hex()  # e.g. -0x1.99999a0000000p-4
    mant, exp = h.split("p")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return mant + "p" + exp + "f"


def floats(a):
    return "{" + ", ".join(hexf(v) for v in np.asarray(a, dtype=F).ravel()) + "}"


def ints(a):
    return "{" + ", ".join(str(int(v)) for v in np.asarray(a).ravel()) + "}"


def mask(a):
    return '"' + "".join("1" if v != 0 else "0" for v in np.asarray(a).ravel()) + '"'


def make_case(name, bits, signed, kind, axis, group, rows, cols, gf, scales, zps, ties_in_odd=False):
    qmin, qmax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    scales = np.asarray(scales, dtype=F)
    zps = np.asarray(zps, dtype=np.int64)
    assert all(qmin <= z <= qmax for z in zps)

    def entry(i, j):
        if kind == "tensor":
            return 0
        if kind == "channel":
            return i if axis == 0 else j
        return i * (cols // group) + j // group

    # x: fill each parameter group's elements with values built for that group
    x = np.zeros((rows, cols), dtype=F)
    members = {}
    for i in range(rows):
        for j in range(cols):
            members.setdefault(entry(i, j), []).append((i, j))
    for k in sorted(members):
        pos = members[k]
        ties = ties_in_odd or zps[k] % 2 == 0
        vals = values_for(len(pos), scales[k], zps[k], qmin, qmax, ties, rng)
        for (i, j), v in zip(pos, vals):
            x[i, j] = v
    dy = rng.standard_normal((rows, cols)).astype(F)

    xt = torch.from_numpy(x.copy())
    # non-learnable op: forward and mask
    xa = xt.clone().requires_grad_(True)
    if kind == "tensor":
        y = torch.fake_quantize_per_tensor_affine(xa, float(scales[0]), int(zps[0]), qmin, qmax)
    elif kind == "channel":
        y = torch.fake_quantize_per_channel_affine(xa, torch.from_numpy(scales), torch.from_numpy(zps.astype(np.int32)),
                                                   axis, qmin, qmax)
    else:
        xg = xa.reshape(rows * cols // group, group)
        y = torch.fake_quantize_per_channel_affine(xg, torch.from_numpy(scales), torch.from_numpy(zps.astype(np.int32)),
                                                   0, qmin, qmax).reshape(rows, cols)
    y.backward(torch.ones_like(y))
    y_nl = y.detach().numpy().astype(F)
    mask_nl = xa.grad.numpy()

    # learnable op per element
    n = rows * cols
    se = np.array([scales[entry(i, j)] for i in range(rows) for j in range(cols)], dtype=F)
    ze = np.array([zps[entry(i, j)] for i in range(rows) for j in range(cols)], dtype=F)
    xe = xt.reshape(n, 1).clone().requires_grad_(True)
    st = torch.from_numpy(se).requires_grad_(True)
    zt = torch.from_numpy(ze).requires_grad_(True)
    ye = torch._fake_quantize_learnable_per_channel_affine(xe, st, zt, 0, qmin, qmax, gf)
    ye.backward(torch.from_numpy(dy.reshape(n, 1).copy()))
    assert np.array_equal(ye.detach().numpy().reshape(rows, cols), y_nl), name
    lmask = xe.grad.numpy().reshape(-1) != 0
    dscale_e = st.grad.numpy().astype(F)
    dzp_e = zt.grad.numpy().astype(F)

    # learnable op on the real grouping: summed gradients
    xl = xt.clone().requires_grad_(True)
    sl = torch.from_numpy(scales.copy()).requires_grad_(True)
    zl = torch.from_numpy(zps.astype(F)).requires_grad_(True)
    if kind == "tensor":
        yl = torch._fake_quantize_learnable_per_tensor_affine(xl, sl, zl, qmin, qmax, gf)
    elif kind == "channel":
        yl = torch._fake_quantize_learnable_per_channel_affine(xl, sl, zl, axis, qmin, qmax, gf)
    else:
        yl = torch._fake_quantize_learnable_per_channel_affine(xl.reshape(rows * cols // group, group), sl, zl, 0, qmin,
                                                               qmax, gf).reshape(rows, cols)
    yl.backward(torch.from_numpy(dy.copy()))
    assert np.array_equal(yl.detach().numpy(), y_nl), name
    dscale = sl.grad.numpy().astype(F)
    dzp = zl.grad.numpy().astype(F)
    trusted = not (kind == "tensor" and zps[0] < 0)
    if trusted:  # the per-element gradients sum to the op's (float32 sums: loose check)
        for k in members:
            ref_s = sum(float(dscale_e[i * cols + j]) for i, j in members[k])
            ref_z = sum(float(dzp_e[i * cols + j]) for i, j in members[k])
            assert abs(ref_s - float(dscale[k])) <= 1e-4 * (1 + abs(ref_s)), (name, k, ref_s, dscale[k])
            assert abs(ref_z - float(dzp[k])) <= 1e-4 * (1 + abs(ref_z)), (name, k, ref_z, dzp[k])
    kind_id = {"tensor": 0, "channel": 1, "group": 2}[kind]
    return ("{" + f'"{name}", {bits}, {"true" if signed else "false"}, {kind_id}, {axis}, {group}, {rows}, {cols}, '
            f'{hexf(gf)}, {"true" if trusted else "false"},\n'
            f" {floats(scales)},\n {ints(zps)},\n {floats(x)},\n {floats(dy)},\n {floats(y_nl)},\n"
            f" {mask(mask_nl)},\n {mask(lmask)},\n {floats(dscale_e)},\n {floats(dzp_e)},\n"
            f" {floats(dscale)},\n {floats(dzp)}" + "},\n")


def main():
    cases = [
        make_case("int8_tensor_z0", 8, True, "tensor", 0, 0, 2, 12, 1.0, [0.05], [0]),
        make_case("int8_tensor_z3", 8, True, "tensor", 0, 0, 2, 12, 0.25, [0.0371], [3]),
        make_case("int8_tensor_zneg5", 8, True, "tensor", 0, 0, 2, 12, 1.0, [0.125], [-5]),
        make_case("uint8_tensor_z128", 8, False, "tensor", 0, 0, 2, 12, 0.5, [0.0213], [128]),
        make_case("uint8_tensor_z37", 8, False, "tensor", 0, 0, 2, 12, 1.0, [0.3], [37]),
        make_case("int4_tensor_z0", 4, True, "tensor", 0, 0, 2, 10, 1.0, [0.17], [0]),
        make_case("uint4_tensor_z8", 4, False, "tensor", 0, 0, 2, 10, 1.0, [0.09], [8]),
        make_case("uint4_tensor_z3", 4, False, "tensor", 0, 0, 2, 10, 0.125, [0.4], [3]),
        make_case("int8_channel0", 8, True, "channel", 0, 0, 4, 12, 1.0, [0.02, 0.11, 0.0625, 0.3], [0, -2, 5, 127]),
        make_case("uint4_channel0", 4, False, "channel", 0, 0, 3, 16, 0.5, [0.05, 0.21, 0.8], [8, 3, 15]),
        make_case("int4_channel1", 4, True, "channel", 1, 0, 6, 4, 1.0, [0.1, 0.033, 0.25, 0.07], [0, 1, -8, 6]),
        make_case("uint4_g8", 4, False, "group", 0, 8, 2, 16, 1.0, [0.15, 0.06, 0.5, 0.013], [8, 2, 11, 0]),
        make_case("int8_tensor_z1_oddties", 8, True, "tensor", 0, 0, 2, 8, 1.0, [0.0625], [1], ties_in_odd=True),
        make_case("uint4_channel0_oddties", 4, False, "channel", 0, 0, 2, 10, 1.0, [0.11, 0.5], [5, 6],
                  ties_in_odd=True),
    ]
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "fake_quant_refs.inc")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"// PyTorch {torch.__version__} (ATEN_CPU_CAPABILITY=default) fake-quant references, written by\n"
                "// make_fake_quant_refs.py (do not edit).\n")
        f.write("// name, bits, signed, kind (0 tensor, 1 channel, 2 group), axis, group, rows, cols, grad_factor,\n")
        f.write("// op_sums_trusted, scales, zero_points, x, dy, y, mask, lmask, dscale_e, dzp_e, dscale, dzp\n")
        for c in cases:
            f.write(c)
    os.replace(tmp, out)
    print(out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
