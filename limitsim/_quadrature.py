"""Adaptive Gauss–Kronrod quadrature of Gaussian expectations of φ (numba kernels).

For φ without a closed form and inputs at which the Gauss–Hermite rule of the Hermite
expansion has not converged (large variance, kinks), route R1's moments E φ(z_i),
E φ(z_i)φ(z_j) and E φ′(z_i)φ′(z_j), z ~ N(0, K), are computed here
(:func:`gauss_moments_quadrature`; the choice of path is explained in
:mod:`limitsim._expectations`).

One variable, y ~ N(μ, σ²): with y = μ + σu, the integral over u ∈ [−R, R] (R = 7.5, widened
while the tails estimated from the integrand at ±R by the Mills ratio are not negligible) is
split into panels at the breakpoints of φ (its kinks and 0, mapped to u), graded
geometrically (ratio 4) from a first width of one unit of y, and at most 3 units of u wide.
Each panel gets the 21-point Gauss–Kronrod rule with QUADPACK's error estimate (``qk21``);
the panel with the largest estimate is bisected until the estimates sum to at most
max(``tol`` · ∫|integrand|, ``atol``) (QUADPACK's ``qag`` strategy, Piessens et al. 1983,
started from the graded panels instead of one interval).

Two variables: with correlation ρ, z_i = s_i u and z_j | z_i ~ N(ρ s_j u, τ²),
τ = s_j √(1 − ρ²), so E F(z_i) G(z_j) = E_u[F(s_i u) H(ρ s_j u)] with the conditional
expectation H(m) = E G(m + τ v) computed by the one-variable rule at every outer node (at
ρ = ±1, τ = 0 and H = G).  The outer breakpoints are those of F and of H (φ's divided by
ρ s_j); the panels next to the latter start at the width over which H smooths a kink of G,
τ/(ρ s_j), since a narrower feature would be invisible to the rule.  The inner targets are
a tenth of the outer ones, and the inner error estimates are integrated along into the
reported error.  The variable with the larger standard deviation is the outer one.

Hermite coefficients E φ(s g) h_k(g) (for the Mehler series of pairs away from |ρ| = 1):
composite 21-point Kronrod rule on panels at most 0.5 wide in g, graded (ratio 2) from φ's
breakpoints, with the |Kronrod − Gauss| differences as error estimates.

Notes: every function is jit-compiled and serial; the top-level kernel writes into its
outputs.
"""

from __future__ import annotations

import math

import numpy as np

from limitsim._numba import SCALAR_FUNCTION, jit, types

__all__ = ["gauss_moments_quadrature"]

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
_NODES = np.concatenate((XK, CHECK))
_MISFIT = 1e-3

_RANGE = 7.5  # initial half-width of the range of u (Gaussian tail mass 6e-14)
_RANGE_MAX = 38.0  # exp(-R²/2) underflows beyond
_FEATURE = 1.0  # width (in y) of the first panel next to a breakpoint
_GRADING = 4.0  # growth factor of consecutive panels away from a breakpoint
_PANEL = 3.0  # largest initial panel width in u (21-point rule error on N(0,1) < 1e-11)
_COEF_PANEL = 0.5  # largest panel width (in g) for Hermite coefficients
_MAX_GRADES = 24
_MAX_BISECTIONS = 200
_INNER = 0.1  # inner tolerance / outer tolerance
_NC = 4  # components per panel (columns of the panel table)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_EPS = float(np.finfo(np.float64).eps)


@jit
def _n_boundaries(n_points, r, width):  # type: ignore[no-untyped-def]
    """Capacity of the boundary list of ``_boundaries`` (breakpoints, grades, gap fillers)."""
    return 2 * (2 + n_points * (1 + 2 * _MAX_GRADES)) + int(2.0 * r / width) + 2


@jit
def _workspace(n_points):  # type: ignore[no-untyped-def]
    """``(points in u, boundaries, panel table, node values)`` for one adaptive integral."""
    n_b = _n_boundaries(n_points, _RANGE_MAX, _PANEL)
    return (
        np.empty((max(n_points, 1), 2)),
        np.empty(n_b),
        np.empty((n_b + _MAX_BISECTIONS, 2 + 3 * _NC)),
        np.empty((_NODES.size, _NC)),
    )


@jit
def _boundaries(upts, n_points, r, grading, width, out):  # type: ignore[no-untyped-def]
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
def _qk21(fbuf, half, panels, p):  # type: ignore[no-untyped-def]
    """Kronrod value, ∫|f| and QUADPACK's error estimate of each column of ``fbuf``.

    Rows of ``fbuf``: the integrand at the Kronrod nodes, then at the ``CHECK`` points; an
    unresolved column gets an error estimate of at least its ∫|f|.
    """
    for c in range(_NC):
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
        miss = _misfit(fbuf, c)
        if miss > 0.0:
            err = max(err, resabs + 2.0 * half * miss)
        panels[p, 2 + c] = resk
        panels[p, 2 + _NC + c] = resabs
        panels[p, 2 + 2 * _NC + c] = err


@jit
def _misfit(fbuf, c):  # type: ignore[no-untyped-def]
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
    """Sums of value, |value| and error over the first ``n`` panels into ``out`` (3, _NC)."""
    out[:] = 0.0
    for p in range(n):
        for c in range(_NC):
            out[0, c] += panels[p, 2 + c]
            out[1, c] += panels[p, 2 + _NC + c]
            out[2, c] += panels[p, 2 + 2 * _NC + c]


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
            score += panels[p, 2 + 2 * _NC + c] / max(tol * totals[1, c], atol[c], 1e-300)
        if score > worst:
            worst = score
            best = p
    return best


@jit(inline="always")
def _gauss(u):  # type: ignore[no-untyped-def]
    return math.exp(-0.5 * u * u) * _INV_SQRT_2PI


@jit
def _panel_1d(F, G, mode, mu, sigma, a, b, fbuf, panels, p):  # type: ignore[no-untyped-def]
    """Evaluate panel ``p`` = [a, b] (in u) of a one-variable expectation (see ``_expect``)."""
    panels[p, 0] = a
    panels[p, 1] = b
    centre = 0.5 * (a + b)
    half = 0.5 * (b - a)
    for k in range(_NODES.size):
        u = centre + half * _NODES[k]
        w = _gauss(u)
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
    _qk21(fbuf, half, panels, p)


@jit
def _expect(F, G, mode, mu, sigma, points, tol, atol, upts, bnd, panels, fbuf, out):  # type: ignore[no-untyped-def]
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
        for c in range(_NC):
            out[1, c] = abs(out[0, c])
        return True
    n_points = points.size
    for k in range(n_points):
        upts[k, 0] = (points[k] - mu) / sigma
        upts[k, 1] = _FEATURE / sigma
    r = _RANGE
    while True:
        n_b = _boundaries(upts, n_points, r, _GRADING, _PANEL, bnd)
        n = n_b - 1
        for p in range(n):
            _panel_1d(F, G, mode, mu, sigma, bnd[p], bnd[p + 1], fbuf, panels, p)
        converged = False
        for _ in range(_MAX_BISECTIONS + 1):
            _totals(panels, n, out)
            p = _worst(panels, n, n_conv, out, tol, atol)
            if p < 0:
                converged = True
                break
            if n == panels.shape[0]:
                break
            a, b = panels[p, 0], panels[p, 1]
            _panel_1d(F, G, mode, mu, sigma, a, 0.5 * (a + b), fbuf, panels, p)
            _panel_1d(F, G, mode, mu, sigma, 0.5 * (a + b), b, fbuf, panels, n)
            n += 1
        if r >= _RANGE_MAX:
            break
        tail = 2.0 * _gauss(r) / r  # Mills ratio: both tails beyond ±r, per unit integrand
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
        r = min(1.5 * r, _RANGE_MAX)
    return converged


@jit
def _panel_pair(F, G, s_o, beta, tau, points, tol_in, atol_in, ws_in, inner, a, b, fbuf, panels, p):  # type: ignore[no-untyped-def]
    """Evaluate panel ``p`` = [a, b] (in u) of a pair expectation (see ``_expect_pair``)."""
    upts, bnd, tab, buf = ws_in
    panels[p, 0] = a
    panels[p, 1] = b
    centre = 0.5 * (a + b)
    half = 0.5 * (b - a)
    ok = True
    for k in range(_NODES.size):
        u = centre + half * _NODES[k]
        w = _gauss(u)
        x = s_o * u
        ok &= _expect(F, G, 0, beta * u, tau, points, tol_in, atol_in, upts, bnd, tab, buf, inner)
        f = F(x)
        g = G(x)
        fbuf[k, 0] = f * inner[0, 0] * w
        fbuf[k, 1] = g * inner[0, 1] * w
        fbuf[k, 2] = abs(f) * inner[2, 0] * w
        fbuf[k, 3] = abs(g) * inner[2, 1] * w
    _qk21(fbuf, half, panels, p)
    return ok


@jit
def _expect_pair(F, G, s_o, s_in, rho, points, tol, atol, atol_in, out):  # type: ignore[no-untyped-def]
    """``(E F(z_o)F(z_in), E G(z_o)G(z_in))`` for standard deviations s_o ≥ s_in, corr. ρ.

    ``atol`` (2,): absolute targets of the two components; ``atol_in`` (2,): of the inner
    conditional expectations (their relative target is a tenth of ``tol``).  Writes value,
    ∫|integrand| and error estimate (outer estimate plus the integrated inner estimates) into
    the rows of ``out`` (3, 4), components 0 and 1; returns True when all estimates met their
    targets.
    """
    out[:] = 0.0
    if s_o <= 0.0:
        f0 = F(0.0)
        g0 = G(0.0)
        out[0, 0] = f0 * f0
        out[0, 1] = g0 * g0
        out[1, 0] = abs(out[0, 0])
        out[1, 1] = abs(out[0, 1])
        return True
    beta = rho * s_in
    tau = s_in * math.sqrt(max(0.0, 1.0 - rho * rho))
    n_points = points.size
    upts, bnd, panels, fbuf = _workspace(2 * n_points)
    ws_in = _workspace(n_points)
    w_pts, w_bnd, w_tab, w_buf = ws_in
    inner = np.empty((3, _NC))
    # breakpoints of F(s_o u) and of H(beta u), whose features are smoothed over τ
    for k in range(n_points):
        upts[k, 0] = points[k] / s_o
        upts[k, 1] = _FEATURE / s_o
        upts[n_points + k, 0] = points[k] / beta if beta != 0.0 else 0.0
        smoothing = tau if 0.0 < tau < _FEATURE else _FEATURE
        upts[n_points + k, 1] = smoothing / abs(beta) if beta != 0.0 else math.inf
    tol_in = _INNER * tol
    r = _RANGE
    ok = True
    while True:
        n_b = _boundaries(upts, 2 * n_points, r, _GRADING, _PANEL, bnd)
        n = n_b - 1
        for p in range(n):
            ok &= _panel_pair(
                F,
                G,
                s_o,
                beta,
                tau,
                points,
                tol_in,
                atol_in,
                ws_in,
                inner,
                bnd[p],
                bnd[p + 1],
                fbuf,
                panels,
                p,
            )
        converged = False
        for _ in range(_MAX_BISECTIONS + 1):
            _totals(panels, n, out)
            p = _worst(panels, n, 2, out, tol, atol)
            if p < 0:
                converged = True
                break
            if n == panels.shape[0]:
                break
            a, b = panels[p, 0], panels[p, 1]
            mid = 0.5 * (a + b)
            ok &= _panel_pair(
                F, G, s_o, beta, tau, points, tol_in, atol_in, ws_in, inner, a, mid, fbuf, panels, p
            )
            ok &= _panel_pair(
                F, G, s_o, beta, tau, points, tol_in, atol_in, ws_in, inner, mid, b, fbuf, panels, n
            )
            n += 1
        if r >= _RANGE_MAX:
            break
        small = True
        for side in (-r, r):
            _expect(
                F,
                G,
                0,
                beta * side,
                tau,
                points,
                tol_in,
                atol_in,
                w_pts,
                w_bnd,
                w_tab,
                w_buf,
                inner,
            )
            ends = (abs(F(s_o * side) * inner[0, 0]), abs(G(s_o * side) * inner[0, 1]))
            for c in range(2):
                if not ends[c] * _gauss(r) / r <= max(tol * out[1, c], atol[c]):
                    small = False
        if small:
            break
        r = min(1.5 * r, _RANGE_MAX)
    out[2, 0] += out[0, 2]
    out[2, 1] += out[0, 3]
    return ok and converged


@jit
def _hermite_coefficients(F, G, s, points, out, err):  # type: ignore[no-untyped-def]
    """Hermite coefficients E F(s g) h_k(g) and E G(s g) h_k(g), g ~ N(0, 1), by quadrature.

    Rows 0 and 1 of ``out`` (2, n_terms) receive the coefficients of F and G, rows of
    ``err`` the summed |Kronrod − Gauss| differences of the panels (a conservative error
    estimate).  Composite 21-point Kronrod rule over |g| ≤ √(4 n_terms + 2) + 6, beyond which
    every h_k² e^{−g²/2} (k < n_terms) is negligible, on panels at most 0.5 wide (the
    oscillations of h_k up to 300 terms) graded (ratio 2) from φ's breakpoints divided by s
    from a first width of 1/s.  Where a panel does not resolve F(s g) or G(s g) (the
    ``CHECK`` points), the miss times the largest |h_k| there is added to the estimates.
    """
    n_terms = out.shape[1]
    out[:] = 0.0
    err[:] = 0.0
    r = math.sqrt(4.0 * n_terms + 2.0) + 6.0
    n_points = points.size if s > 0.0 else 0
    upts = np.empty((max(n_points, 1), 2))
    for k in range(n_points):
        upts[k, 0] = points[k] / s
        upts[k, 1] = _FEATURE / s
    bnd = np.empty(_n_boundaries(n_points, r, _COEF_PANEL))
    n_b = _boundaries(upts, n_points, r, 2.0, _COEF_PANEL, bnd)
    n_q = XK.size
    roots = np.sqrt(np.arange(n_terms + 1.0))
    inv_roots = 1.0 / roots[1:]
    vals = np.zeros((_NODES.size, _NC))  # F and G times the weight at nodes and check points
    fw = np.empty((4, n_q))  # F and G times the Kronrod and the Gauss weights, per node
    nodes = np.empty(n_q)
    h = np.empty(n_q)
    h_prev = np.empty(n_q)
    for p in range(n_b - 1):
        centre = 0.5 * (bnd[p] + bnd[p + 1])
        half = 0.5 * (bnd[p + 1] - bnd[p])
        for q in range(_NODES.size):
            g = centre + half * _NODES[q]
            w = half * _gauss(g)
            vals[q, 0] = F(s * g) * w if w > 0.0 else 0.0
            vals[q, 1] = G(s * g) * w if w > 0.0 else 0.0
        miss0 = 2.0 * _misfit(vals, 0)  # an unresolved panel: error up to ∫|miss| |h_k|
        miss1 = 2.0 * _misfit(vals, 1)
        for q in range(n_q):
            nodes[q] = centre + half * XK[q]
            fw[0, q] = WK[q] * vals[q, 0]
            fw[1, q] = WK[q] * vals[q, 1]
            fw[2, q] = WG[q] * vals[q, 0]
            fw[3, q] = WG[q] * vals[q, 1]
            h[q] = 1.0
            h_prev[q] = 0.0
        for k in range(n_terms):  # h_k at all nodes of the panel (independent chains)
            a0 = a1 = b0 = b1 = top = 0.0
            for q in range(n_q):
                a0 += fw[0, q] * h[q]
                a1 += fw[1, q] * h[q]
                b0 += fw[2, q] * h[q]
                b1 += fw[3, q] * h[q]
                top = max(top, abs(h[q]))
            out[0, k] += a0
            out[1, k] += a1
            err[0, k] += abs(a0 - b0) + miss0 * top
            err[1, k] += abs(a1 - b1) + miss1 * top
            for q in range(n_q):
                nxt = (nodes[q] * h[q] - roots[k] * h_prev[q]) * inv_roots[k]
                h_prev[q] = h[q]
                h[q] = nxt


_F64 = types.float64[::1]
_M64 = types.float64[:, ::1]
_T64 = types.float64[:, :, ::1]


@jit(
    signatures=[
        types.void(
            SCALAR_FUNCTION,
            SCALAR_FUNCTION,
            _M64,
            _F64,
            types.boolean[::1],
            types.float64,
            _T64,
            _F64,
            _M64,
            _M64,
            _F64,
            _M64,
            _M64,
        )
    ]
)
def gauss_moments_quadrature(  # type: ignore[no-untyped-def]
    phi,
    dphi,
    K,
    points,
    resolved,
    tol,
    coef,
    mean,
    second,
    vprime,
    mean_err,
    second_err,
    vprime_err,
):
    """Gaussian moments of φ for the inputs not resolved by the Gauss–Hermite rule.

    For an input i not ``resolved``: E φ(z_i), E φ(z_i)² and E φ′(z_i)² by the adaptive
    one-variable rule, and its Hermite coefficients by :func:`_hermite_coefficients`.  For a
    pair (i, j) with at least one such input: the Mehler series of
    :func:`limitsim._kernels.gauss_moments_hermite` with these coefficients when its error
    bound, |ρ|^K √(T_i T_j) (absolute tails T = variance minus the squared coefficients) plus
    the propagated coefficient errors, meets the pair's target (so for |ρ| not close to 1);
    otherwise the adaptive two-variable rule.  Targets: ``tol`` times
    √(second_ii second_jj) (√(vprime_ii vprime_jj)) or times the integral of the absolute
    integrand, whichever is larger.

    Parameters
    ----------
    phi, dphi : first-class jitted scalar functions
    K : ndarray, shape (P, P)
        Covariance of z.
    points : ndarray, shape (n,)
        Breakpoints of φ and φ′ (their kinks, and 0).
    resolved : ndarray of bool, shape (P,)
        Inputs computed by the Gauss–Hermite rule: their diagonal entries and coefficients
        are inputs here, and pairs of two resolved inputs are left untouched.
    tol : float
        Relative target of the adaptive rules (well above 50 machine epsilons).
    coef : ndarray, shape (2, P, K_terms)
        Hermite coefficients of φ (row 0) and φ′ (row 1): in for resolved inputs, out for
        the others.
    mean : ndarray, shape (P,)
        ``E φ(z_i)``.
    second, vprime : ndarray, shape (P, P)
        ``E φ(z_i)φ(z_j)`` and ``E φ′(z_i)φ′(z_j)``.
    mean_err : ndarray, shape (P,)
    second_err, vprime_err : ndarray, shape (P, P)
        Out: error estimates of the entries computed here (absolute; infinite where an
        adaptive rule did not converge).

    Notes
    -----
    jit-compiled, serial (the inputs and pairs are independent: a ``prange`` over them is
    possible, but a thread pool's synchronisation under load cost more than it saved);
    writes into the outputs.
    """
    P = K.shape[0]
    n_terms = coef.shape[2]
    todo = np.flatnonzero(~resolved)
    cerr = np.zeros((2, P, n_terms))
    for t in range(todo.size):
        i = todo[t]
        out = np.empty((3, _NC))
        upts, bnd, panels, fbuf = _workspace(points.size)
        s = math.sqrt(max(K[i, i], 0.0))
        ok = _expect(phi, dphi, 1, 0.0, s, points, tol, np.zeros(_NC), upts, bnd, panels, fbuf, out)
        bad = 0.0 if ok else math.inf
        mean[i] = out[0, 0]
        second[i, i] = out[0, 1]
        vprime[i, i] = out[0, 2]
        mean_err[i] = out[2, 0] + bad
        second_err[i, i] = out[2, 1] + bad
        vprime_err[i, i] = out[2, 2] + bad
        _hermite_coefficients(phi, dphi, s, points, coef[:, i, :], cerr[:, i, :])
    tails = np.empty((P, 2))  # absolute, with the diagonal's error as a floor
    for i in range(P):
        var = second[i, i] - mean[i] ** 2
        head = 0.0
        dhead = coef[1, i, 0] ** 2
        for k in range(1, n_terms):
            head += coef[0, i, k] ** 2
            dhead += coef[1, i, k] ** 2
        tails[i, 0] = max(var - head, 0.0) + tol * abs(second[i, i])
        tails[i, 1] = max(vprime[i, i] - dhead, 0.0) + tol * abs(vprime[i, i])
    pairs = np.empty((P * (P - 1) // 2, 2), dtype=np.int64)
    n_pairs = 0
    for i in range(P):
        for j in range(i + 1, P):
            if not (resolved[i] and resolved[j]):
                pairs[n_pairs, 0] = i
                pairs[n_pairs, 1] = j
                n_pairs += 1
    for t in range(n_pairs):
        i, j = pairs[t, 0], pairs[t, 1]
        o, n = (i, j) if K[i, i] >= K[j, j] else (j, i)  # outer: the larger variance
        s_o = math.sqrt(max(K[o, o], 0.0))
        s_in = math.sqrt(max(K[n, n], 0.0))
        rho = 0.0
        if s_o > 0.0 and s_in > 0.0:
            rho = min(1.0, max(-1.0, K[i, j] / (s_o * s_in)))
        atol = np.empty(2)
        atol[0] = tol * math.sqrt(abs(second[o, o] * second[n, n]))
        atol[1] = tol * math.sqrt(abs(vprime[o, o] * vprime[n, n]))
        value = np.zeros(2)
        bound = np.zeros(2)
        power = 1.0
        for k in range(n_terms):
            for c in range(2):
                a, b = coef[c, i, k], coef[c, j, k]
                value[c] += a * b * power
                bound[c] += (cerr[c, i, k] * abs(b) + abs(a) * cerr[c, j, k]) * abs(power)
            power *= rho
        for c in range(2):
            bound[c] += abs(power) * math.sqrt(tails[i, c] * tails[j, c])
        if bound[0] <= atol[0] and bound[1] <= atol[1]:
            second[i, j] = second[j, i] = value[0]
            vprime[i, j] = vprime[j, i] = value[1]
            second_err[i, j] = second_err[j, i] = bound[0]
            vprime_err[i, j] = vprime_err[j, i] = bound[1]
        else:
            atol_in = np.empty(2)
            atol_in[0] = _INNER * tol * math.sqrt(abs(second[n, n]))
            atol_in[1] = _INNER * tol * math.sqrt(abs(vprime[n, n]))
            out = np.empty((3, _NC))
            ok = _expect_pair(phi, dphi, s_o, s_in, rho, points, tol, atol, atol_in, out)
            bad = 0.0 if ok else math.inf
            second[i, j] = second[j, i] = out[0, 0]
            vprime[i, j] = vprime[j, i] = out[0, 1]
            second_err[i, j] = second_err[j, i] = out[2, 0] + bad
            vprime_err[i, j] = vprime_err[j, i] = out[2, 1] + bad
