"""The 21-point Gauss–Kronrod rule and adaptive one-variable Gaussian expectations (numba kernels).

y ~ N(μ, σ²): with y = μ + σu, the integral over u ∈ [−R, R] (R = 7.5, widened while the
tails estimated from the integrand at ±R by the Mills ratio are not negligible) is split into
panels at the breakpoints of φ (its kinks and 0, mapped to u), graded geometrically (ratio 4)
from a first width of one unit of y, and at most 3 units of u wide.  Each panel gets the
21-point Gauss–Kronrod rule with QUADPACK's error estimate (:func:`qk21`); the panel with the
largest estimate is bisected until the estimates sum to at most max(``tol`` · ∫|integrand|,
``atol``) (QUADPACK's ``qag`` strategy, Piessens et al. 1983, started from the graded panels
instead of one interval).  :func:`expect` is that rule; the panel machinery (:func:`workspace`,
:func:`boundaries`, :func:`qk21`, :func:`next_panel`) also serves the two-variable rule and the
Hermite coefficients of :mod:`limitsim.gaussian._quadrature`.

A panel is a row of the panel table: ``(a, b)``, then per component (``NC`` columns each) the
Kronrod value, ∫|integrand| and the error estimate.

Notes: every function is jit-compiled and serial.
"""

from __future__ import annotations

import math

import numpy as np

from limitsim._numba import jit

__all__ = [
    "CHECK",
    "FEATURE",
    "GRADING",
    "MAX_BISECTIONS",
    "NC",
    "NODES",
    "PANEL",
    "RANGE",
    "RANGE_MAX",
    "WG",
    "WK",
    "XK",
    "boundaries",
    "expect",
    "gauss",
    "misfit",
    "n_boundaries",
    "next_panel",
    "qk21",
    "workspace",
]

# 21-point Kronrod rule on [-1, 1] and its embedded 10-point Gauss rule (QUADPACK qk21).
_XK_POS = np.array(
    [
        0.995657163025808080735527280689003,
        0.973906528517171720077964012084452,
        0.930157491355708226001207180059508,
        0.865063366688984510732096688423493,
        0.780817726586416897063717578345042,
        0.679409568299024406234327365114874,
        0.562757134668604683339000099272694,
        0.433395394129247190799265943165784,
        0.294392862701460198131126603103866,
        0.148874338981631210884826001129720,
        0.0,
    ]
)
_WK_POS = np.array(
    [
        0.011694638867371874278064396062192,
        0.032558162307964727478818972459390,
        0.054755896574351996031381300244580,
        0.075039674810919952767043140916190,
        0.093125454583697605535065465083366,
        0.109387158802297641899210590325805,
        0.123491976262065851077208980614867,
        0.134709217311473325928054001771707,
        0.142775938577060080797094273138717,
        0.147739104901338491374841515972068,
        0.149445554002916905664936468389821,
    ]
)
_WG_POS = np.array(
    [
        0.0,
        0.066671344308688137593568809893332,
        0.0,
        0.149451349150580593145776339657697,
        0.0,
        0.219086362515982043995534934228163,
        0.0,
        0.269266719309996355091226921569469,
        0.0,
        0.295524224714752870173892994651338,
        0.0,
    ]
)
XK = np.concatenate((-_XK_POS[:-1], _XK_POS[::-1]))
WK = np.concatenate((_WK_POS[:-1], _WK_POS[::-1]))
WG = np.concatenate((_WG_POS[:-1], _WG_POS[::-1]))
# Resolution check: the integrand at three more points of each panel against the degree-20
# interpolant through the Kronrod nodes (row t of LAGRANGE: the Lagrange basis at CHECK[t]).
# A miss by more than _MISFIT of the largest node value means the rule does not resolve the
# integrand (aliasing of an oscillation, a narrow feature between nodes), which the
# Kronrod−Gauss difference can fail to show; the panel is then bisected.
CHECK = np.array([-0.6180339887498949, 0.1213203435596426, 0.7320508075688772])
LAGRANGE = np.array(
    [[np.prod([(t - x) / (xj - x) for x in XK if x != xj]) for xj in XK] for t in CHECK]
)
NODES = np.concatenate((XK, CHECK))
_MISFIT = 1e-3

RANGE = 7.5  # initial half-width of the range of u (Gaussian tail mass 6e-14)
RANGE_MAX = 38.0  # exp(-R²/2) underflows beyond
FEATURE = 1.0  # width (in y) of the first panel next to a breakpoint
GRADING = 4.0  # growth factor of consecutive panels away from a breakpoint
PANEL = 3.0  # largest initial panel width in u (21-point rule error on N(0,1) < 1e-11)
_MAX_GRADES = 24
MAX_BISECTIONS = 200
NC = 4  # components per panel (columns of the panel table)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_EPS = float(np.finfo(np.float64).eps)


@jit
def n_boundaries(n_points, r, width):  # type: ignore[no-untyped-def]
    """Capacity of the boundary list of ``boundaries`` (breakpoints, grades, gap fillers)."""
    return 2 * (2 + n_points * (1 + 2 * _MAX_GRADES)) + int(2.0 * r / width) + 2


@jit
def workspace(n_points):  # type: ignore[no-untyped-def]
    """``(points in u, boundaries, panel table, node values)`` for one adaptive integral."""
    n_b = n_boundaries(n_points, RANGE_MAX, PANEL)
    return (
        np.empty((max(n_points, 1), 2)),
        np.empty(n_b),
        np.empty((n_b + MAX_BISECTIONS, 2 + 3 * NC)),
        np.empty((NODES.size, NC)),
    )


@jit
def boundaries(upts, n_points, r, grading, width, out):  # type: ignore[no-untyped-def]
    """Initial panel boundaries on [−r, r]: breakpoints, graded neighbours, gap fillers.

    ``upts[k] = (point, h0)``: around each breakpoint, boundaries at distances h0,
    h0·grading, h0·grading², ... below ``width`` (a point given twice is graded once, from
    the smaller h0); gaps wider than ``width`` are split evenly.  Returns the number of
    boundaries written (sorted) into ``out``.
    """
    n = 2
    out[0] = -r
    out[1] = r
    for k in range(n_points):
        p = upts[k, 0]
        h = upts[k, 1]
        repeated = False  # the same point twice (a pair's F and H at 0): the finer grading
        for j in range(n_points):
            if j != k and abs(upts[j, 0] - p) <= 1e-14 * r:
                if upts[j, 1] < h or (upts[j, 1] == h and j < k):
                    repeated = True
        if repeated:
            continue
        if -r < p < r:
            out[n] = p
            n += 1
        for _ in range(_MAX_GRADES):
            if h >= width:
                break
            if -r < p - h < r:
                out[n] = p - h
                n += 1
            if -r < p + h < r:
                out[n] = p + h
                n += 1
            h *= grading
    for k in range(1, n):  # insertion sort (a few dozen entries)
        v = out[k]
        m = k - 1
        while m >= 0 and out[m] > v:
            out[m + 1] = out[m]
            m -= 1
        out[m + 1] = v
    m = 1  # drop duplicates, then split gaps wider than ``width`` (in place, from the end)
    for k in range(1, n):
        if out[k] - out[m - 1] > 1e-14 * r:
            out[m] = out[k]
            m += 1
    extra = 0
    for k in range(m - 1):
        extra += max(math.ceil((out[k + 1] - out[k]) / width) - 1, 0)
    write = m + extra - 1
    for k in range(m - 1, 0, -1):
        right, left = out[k], out[k - 1]
        pieces = max(math.ceil((right - left) / width), 1)
        out[write] = right
        write -= 1
        for t in range(pieces - 1, 0, -1):
            out[write] = left + (right - left) * t / pieces
            write -= 1
    return m + extra


@jit
def qk21(fbuf, half, panels, p):  # type: ignore[no-untyped-def]
    """Kronrod value, ∫|f| and QUADPACK's error estimate of each column of ``fbuf``.

    Rows of ``fbuf``: the integrand at the Kronrod nodes, then at the ``CHECK`` points; an
    unresolved column gets an error estimate of at least its ∫|f|.
    """
    for c in range(NC):
        resk = 0.0
        resg = 0.0
        resabs = 0.0
        for k in range(XK.size):
            resk += WK[k] * fbuf[k, c]
            resg += WG[k] * fbuf[k, c]
            resabs += WK[k] * abs(fbuf[k, c])
        mean = 0.5 * resk
        resasc = 0.0
        for k in range(XK.size):
            resasc += WK[k] * abs(fbuf[k, c] - mean)
        resk *= half
        resabs *= half
        resasc *= half
        err = abs(resk - resg * half)
        if resasc != 0.0 and err != 0.0:
            err = resasc * min(1.0, (200.0 * err / resasc) ** 1.5)
        err = max(50.0 * _EPS * resabs, err)
        miss = misfit(fbuf, c)
        if miss > 0.0:
            err = max(err, resabs + 2.0 * half * miss)
        panels[p, 2 + c] = resk
        panels[p, 2 + NC + c] = resabs
        panels[p, 2 + 2 * NC + c] = err


@jit
def misfit(fbuf, c):  # type: ignore[no-untyped-def]
    """Largest miss of the interpolant at the check points, or 0 below ``_MISFIT``."""
    n_k = XK.size
    top = 0.0
    for k in range(n_k):
        top = max(top, abs(fbuf[k, c]))
    worst = 0.0
    for t in range(CHECK.size):
        guess = 0.0
        for k in range(n_k):
            guess += LAGRANGE[t, k] * fbuf[k, c]
        worst = max(worst, abs(guess - fbuf[n_k + t, c]))
    return worst if worst > _MISFIT * top else 0.0


@jit
def _totals(panels, n, out):  # type: ignore[no-untyped-def]
    """Sums of value, |value| and error over the first ``n`` panels into ``out`` (3, NC)."""
    out[:] = 0.0
    for p in range(n):
        for c in range(NC):
            out[0, c] += panels[p, 2 + c]
            out[1, c] += panels[p, 2 + NC + c]
            out[2, c] += panels[p, 2 + 2 * NC + c]


@jit
def _worst(panels, n, n_conv, totals, tol, atol):  # type: ignore[no-untyped-def]
    """Index of the panel to bisect, or −1 when the first ``n_conv`` components converged.

    Component c has converged when its summed error estimate is at most
    max(tol · ∫|integrand|, atol[c]).
    """
    done = True
    for c in range(n_conv):
        if not math.isfinite(totals[0, c]):  # NaN or inf: refining cannot help
            return -1
        if totals[2, c] > max(tol * totals[1, c], atol[c]):
            done = False
    if done:
        return -1
    best = -1
    worst = -1.0
    for p in range(n):
        score = 0.0
        for c in range(n_conv):
            score += panels[p, 2 + 2 * NC + c] / max(tol * totals[1, c], atol[c], 1e-300)
        if score > worst:
            worst = score
            best = p
    return best


@jit
def next_panel(panels, n, n_conv, totals, tol, atol):  # type: ignore[no-untyped-def]
    """The panel to bisect next; −1 when converged, −2 when the panel table is full.

    Writes the sums over the first ``n`` panels into ``totals`` (3, ``NC``) first (value,
    ∫|integrand|, error estimate; :func:`_worst` states the convergence test).
    """
    _totals(panels, n, totals)
    p = _worst(panels, n, n_conv, totals, tol, atol)
    if p >= 0 and n == panels.shape[0]:
        return -2
    return p


@jit(inline="always")
def gauss(u):  # type: ignore[no-untyped-def]
    return math.exp(-0.5 * u * u) * _INV_SQRT_2PI


@jit
def _panel_1d(F, G, mode, mu, sigma, a, b, fbuf, panels, p):  # type: ignore[no-untyped-def]
    """Evaluate panel ``p`` = [a, b] (in u) of a one-variable expectation (see ``expect``)."""
    panels[p, 0] = a
    panels[p, 1] = b
    centre = 0.5 * (a + b)
    half = 0.5 * (b - a)
    for k in range(NODES.size):
        u = centre + half * NODES[k]
        w = gauss(u)
        y = mu + sigma * u
        f = F(y)
        g = G(y)
        if mode == 0:
            fbuf[k, 0] = f * w
            fbuf[k, 1] = g * w
            fbuf[k, 2] = 0.0
        else:
            fbuf[k, 0] = f * w
            fbuf[k, 1] = f * w * f  # weight first: no needless overflow
            fbuf[k, 2] = g * w * g
        fbuf[k, 3] = 0.0
    qk21(fbuf, half, panels, p)


@jit
def expect(F, G, mode, mu, sigma, points, tol, atol, upts, bnd, panels, fbuf, out):  # type: ignore[no-untyped-def]
    """One-variable expectations over y ~ N(mu, sigma²) by adaptive Gauss–Kronrod.

    ``mode`` 0: ``(E F(y), E G(y))`` (the conditional expectation of a pair); ``mode`` 1:
    ``(E F(y), E F(y)², E G(y)²)`` (one input).  Writes value, ∫|integrand| and error
    estimate of each component into the rows of ``out`` (3, 4); returns True when the
    estimates met ``max(tol · ∫|integrand|, atol)``.
    """
    n_conv = 2 if mode == 0 else 3
    if sigma <= 0.0:
        f = F(mu)
        g = G(mu)
        out[:] = 0.0
        if mode == 0:
            out[0, 0] = f
            out[0, 1] = g
        else:
            out[0, 0] = f
            out[0, 1] = f * f
            out[0, 2] = g * g
        for c in range(NC):
            out[1, c] = abs(out[0, c])
        return True
    n_points = points.size
    for k in range(n_points):
        upts[k, 0] = (points[k] - mu) / sigma
        upts[k, 1] = FEATURE / sigma
    r = RANGE
    while True:
        n_b = boundaries(upts, n_points, r, GRADING, PANEL, bnd)
        n = n_b - 1
        for p in range(n):
            _panel_1d(F, G, mode, mu, sigma, bnd[p], bnd[p + 1], fbuf, panels, p)
        converged = False
        for _ in range(MAX_BISECTIONS + 1):
            p = next_panel(panels, n, n_conv, out, tol, atol)
            if p < 0:
                converged = p == -1
                break
            a, b = panels[p, 0], panels[p, 1]
            _panel_1d(F, G, mode, mu, sigma, a, 0.5 * (a + b), fbuf, panels, p)
            _panel_1d(F, G, mode, mu, sigma, 0.5 * (a + b), b, fbuf, panels, n)
            n += 1
        if r >= RANGE_MAX:
            break
        tail = 2.0 * gauss(r) / r  # Mills ratio: both tails beyond ±r, per unit integrand
        fl, fr, gl, gr = F(mu - sigma * r), F(mu + sigma * r), G(mu - sigma * r), G(mu + sigma * r)
        if mode == 0:
            ends = (max(abs(fl), abs(fr)), max(abs(gl), abs(gr)), 0.0)
        else:
            ends = (max(abs(fl), abs(fr)), max(fl * fl, fr * fr), max(gl * gl, gr * gr))
        small = True
        for c in range(n_conv):
            if not ends[c] * tail <= max(tol * out[1, c], atol[c]):
                small = False
        if small:
            break
        r = min(1.5 * r, RANGE_MAX)
    return converged
