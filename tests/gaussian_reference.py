"""30-digit reference values of Gaussian expectations for ``tests/test_expectations.py``.

For z = (z_i, z_j) ~ N(0, [[v_i, ρ√(v_i v_j)], [ρ√(v_i v_j), v_j]]) and φ in ``PHIS``:
E φ(z_i)φ(z_j), E φ′(z_i)φ′(z_j), and per input E φ(z), E φ(z)², E φ′(z)².

Method (independent of limitsim's code: mpmath arithmetic at 30 digits, φ′ written by hand,
a fixed composite Gauss–Legendre rule instead of the adaptive Gauss–Kronrod one, Cholesky
coordinates z_i = s_i g₁, z_j = s_j(ρ g₁ + √(1−ρ²) g₂) instead of the conditional form):
each variable is integrated over [−10, 10] (the Gaussian tail beyond is below 1e−22) on
panels split at the points where φ's argument crosses 0 (φ's feature or kink) and graded
(ratio 2) towards them from a width of half the feature's scale, at most 2 wide.  Every
value is computed with 24 and with 12 nodes per panel; the stored ``check`` is the largest
relative difference of the two, and must be below 1e−12 (Gauss–Legendre's error falls
geometrically with the number of nodes, so the stored 24-node values are far more accurate
than the 12-node values they match).  At ρ = 0 and ρ = ±1 the pair reduces to
one-variable integrals.

Run ``python -m tests.gaussian_reference`` (about an hour on one core; it resumes from the
cases already in the file) to write ``tests/gaussian_reference.json``.
"""

from __future__ import annotations

import functools
import itertools
import json
import sys
from pathlib import Path

import mpmath
from mpmath import mp, mpf

DIGITS = 30
PATH = Path(__file__).with_name("gaussian_reference.json")
HALF_RANGE = 10
CHECK = mpf("1e-12")
PANEL = 2


def _gelu(x):
    return x * (1 + mpmath.erf(x / mpmath.sqrt(2))) / 2


def _dgelu(x):
    return (1 + mpmath.erf(x / mpmath.sqrt(2))) / 2 + x * mpmath.exp(-x * x / 2) / mpmath.sqrt(
        2 * mp.pi
    )


def _silu(x):
    return x / (1 + mpmath.exp(-x))


def _dsilu(x):
    sig = 1 / (1 + mpmath.exp(-x))
    return sig * (1 + x * (1 - sig))


def _xerf(x):
    return x * mpmath.erf(x)


def _dxerf(x):
    return mpmath.erf(x) + 2 * x * mpmath.exp(-x * x) / mpmath.sqrt(mp.pi)


#: spec -> (φ, φ′) in mpmath; the feature of each is at 0 on a scale of 1.
PHIS = {
    "tanh": (mpmath.tanh, lambda x: mpmath.sech(x) ** 2),
    "gelu": (_gelu, _dgelu),
    "silu": (_silu, _dsilu),
    "x*erf(x)": (_xerf, _dxerf),
}
#: (v_i, v_j, ρ)
CASES = [(v, v, rho) for v in (1, 10, 100, 1000) for rho in (0, 0.5, 0.99, -0.7, 1 - 1e-6, -1)] + [
    (10, 1000, 0.9),
    (100, 1, -0.5),
]


@functools.cache
def _nodes(n):
    """Gauss–Legendre nodes and weights on [−1, 1] with ``n`` points (at the working precision)."""
    xs, ws = [], []
    for k in range(1, n + 1):
        x = mpmath.cos(mp.pi * (k - mpf(1) / 4) / (n + mpf(1) / 2))
        for _ in range(100):
            p0, p1 = mpf(1), x
            for m in range(2, n + 1):
                p0, p1 = p1, ((2 * m - 1) * x * p1 - (m - 1) * p0) / m
            dp = n * (x * p1 - p0) / (x * x - 1)
            step = p1 / dp
            x -= step
            if abs(step) < mpf(10) ** (-mp.dps - 5):
                break
        xs.append(x)
        ws.append(2 / ((1 - x * x) * dp * dp))
    return xs, ws


def _panels(centres_widths):
    """Boundaries on [−10, 10] graded (ratio 2) towards each (centre, first width)."""
    cuts = {mpf(-HALF_RANGE), mpf(HALF_RANGE)}
    for centre, width in centres_widths:
        if -HALF_RANGE < centre < HALF_RANGE:
            cuts.add(centre)
        w = width
        while w < PANEL:
            cuts.update(c for c in (centre - w, centre + w) if -HALF_RANGE < c < HALF_RANGE)
            w *= 2
    cuts = sorted(cuts)
    out = [cuts[0]]
    for b in cuts[1:]:
        pieces = int(mpmath.ceil((b - out[-1]) / PANEL))
        a = out[-1]
        out += [a + (b - a) * k / pieces for k in range(1, pieces + 1)]
    return out


def _integrate(f, cuts, n):
    """Σ over panels of the n-point Gauss–Legendre rule of f (vector valued: a list)."""
    xs, ws = _nodes(n)
    total = None
    for a, b in itertools.pairwise(cuts):
        c, h = (a + b) / 2, (b - a) / 2
        for x, w in zip(xs, ws, strict=True):
            vals = f(c + h * x)
            total = (
                [w * h * v for v in vals]
                if total is None
                else [t + w * h * v for t, v in zip(total, vals, strict=True)]
            )
    return total


def _gauss(g):
    return mpmath.exp(-g * g / 2) / mpmath.sqrt(2 * mp.pi)


def single(phi, dphi, v, n):
    """(E φ(z), E φ(z)², E φ′(z)²), z ~ N(0, v)."""
    s = mpmath.sqrt(v)

    def f(g):
        w = _gauss(g)
        a, b = phi(s * g), dphi(s * g)
        return [a * w, a * a * w, b * b * w]

    return _integrate(f, _panels([(mpf(0), 1 / (2 * s))]), n)


def pair(phi, dphi, v_i, v_j, rho, n):
    """(E φ(z_i)φ(z_j), E φ′(z_i)φ′(z_j)) for 0 < |ρ| < 1."""
    s_i, s_j, rho = mpmath.sqrt(v_i), mpmath.sqrt(v_j), mpf(rho)
    c = mpmath.sqrt(1 - rho * rho)
    inner_width = 1 / (2 * s_j * c)
    outer = _panels([(mpf(0), 1 / (2 * s_i)), (mpf(0), max(1, s_j * c) / (2 * s_j * abs(rho)))])

    def f(g1):
        m = s_j * rho * g1

        def inner(g2):
            w = _gauss(g2)
            z = m + s_j * c * g2
            return [phi(z) * w, dphi(z) * w]

        h0, h1 = _integrate(inner, _panels([(-m / (s_j * c), inner_width)]), n)
        w = _gauss(g1)
        return [phi(s_i * g1) * h0 * w, dphi(s_i * g1) * h1 * w]

    return _integrate(f, outer, n)


def case(name, v_i, v_j, rho, n):
    """All quantities of one case with n nodes per panel, as mpf (at 30 digits)."""
    with mp.workdps(DIGITS):
        return _case(name, v_i, v_j, rho, n)


def _case(name, v_i, v_j, rho, n):
    phi, dphi = PHIS[name]
    mean_i, second_ii, vprime_ii = single(phi, dphi, v_i, n)
    mean_j, second_jj, vprime_jj = single(phi, dphi, v_j, n)
    if rho == 0:
        second, vprime = mean_i * mean_j, None
        # E φ′(z_i) E φ′(z_j): one-variable integrals of φ′
        d_i = _integrate(
            lambda g: [dphi(mpmath.sqrt(v_i) * g) * _gauss(g)],
            _panels([(mpf(0), 1 / (2 * mpmath.sqrt(v_i)))]),
            n,
        )[0]
        d_j = _integrate(
            lambda g: [dphi(mpmath.sqrt(v_j) * g) * _gauss(g)],
            _panels([(mpf(0), 1 / (2 * mpmath.sqrt(v_j)))]),
            n,
        )[0]
        vprime = d_i * d_j
    elif abs(rho) == 1:
        assert v_i == v_j
        s = mpmath.sqrt(v_i)
        second, vprime = _integrate(
            lambda g: [
                phi(s * g) * phi(rho * s * g) * _gauss(g),
                dphi(s * g) * dphi(rho * s * g) * _gauss(g),
            ],
            _panels([(mpf(0), 1 / (2 * s))]),
            n,
        )
    else:
        second, vprime = pair(phi, dphi, v_i, v_j, rho, n)
    return {
        "second": second,
        "vprime": vprime,
        "mean_i": mean_i,
        "mean_j": mean_j,
        "second_ii": second_ii,
        "second_jj": second_jj,
        "vprime_ii": vprime_ii,
        "vprime_jj": vprime_jj,
    }


def main() -> None:
    """Compute every case twice (24 and 12 nodes per panel), appending to the JSON file."""
    records = json.loads(PATH.read_text()) if PATH.exists() else []
    done = {(r["phi"], r["v_i"], r["v_j"], r["rho"]) for r in records}
    for name in PHIS:
        for v_i, v_j, rho in CASES:
            if (name, v_i, v_j, rho) in done:
                continue
            fine = case(name, v_i, v_j, rho, 24)
            coarse = case(name, v_i, v_j, rho, 12)
            scale = {
                "second": mpmath.sqrt(fine["second_ii"] * fine["second_jj"]),
                "vprime": mpmath.sqrt(fine["vprime_ii"] * fine["vprime_jj"]),
                "mean_i": mpmath.sqrt(fine["second_ii"]),
                "mean_j": mpmath.sqrt(fine["second_jj"]),
            }
            check = max(abs(fine[k] - coarse[k]) / scale.get(k, abs(fine[k])) for k in fine)
            assert check < CHECK, (name, v_i, v_j, rho, check)
            record = {"phi": name, "v_i": v_i, "v_j": v_j, "rho": rho}
            record.update({k: mpmath.nstr(x, 25) for k, x in fine.items()})
            record["check"] = float(check)
            records.append(record)
            PATH.write_text(json.dumps(records, indent=1) + "\n")
            print(name, v_i, v_j, rho, record["second"], f"check {float(check):.1e}", flush=True)


if __name__ == "__main__":
    with mp.workdps(DIGITS):
        sys.exit(main())
