"""Gaussian moments of φ by adaptive quadrature where the Hermite expansion has not converged.

For φ without a closed form and inputs at which the Gauss–Hermite rule of the Hermite
expansion has not converged (large variance, kinks), route R1's moments E φ(z_i),
E φ(z_i)φ(z_j) and E φ′(z_i)φ′(z_j), z ~ N(0, K), are computed here
(:func:`gauss_moments_quadrature`; the choice of path is explained in
:mod:`limitsim.gaussian._expectations`).  One-variable expectations use the adaptive Gauss–Kronrod
rule of :mod:`limitsim.gaussian._gauss_kronrod`.

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
from limitsim.gaussian._gauss_kronrod import (
    FEATURE,
    GRADING,
    MAX_BISECTIONS,
    NC,
    NODES,
    PANEL,
    RANGE,
    RANGE_MAX,
    WG,
    WK,
    XK,
    boundaries,
    expect,
    gauss,
    misfit,
    n_boundaries,
    next_panel,
    qk21,
    workspace,
)

__all__ = ["gauss_moments_quadrature"]

_COEF_PANEL = 0.5  # largest panel width (in g) for Hermite coefficients
_INNER = 0.1  # inner tolerance / outer tolerance


@jit
def _panel_pair(F, G, pair, points, ws_in, inner, a, b, fbuf, panels, p):  # type: ignore[no-untyped-def]
    """Evaluate panel ``p`` = [a, b] (in u) of a pair expectation (see ``_expect_pair``).

    ``pair`` = (s_o, β, τ, inner relative target, inner absolute targets (2,)); ``ws_in``: a
    :func:`~limitsim.gaussian._gauss_kronrod.workspace` of the inner expectations, written into
    ``inner`` (3, ``NC``).  Returns True when every inner expectation converged.
    """
    s_o, beta, tau, tol_in, atol_in = pair
    upts, bnd, tab, buf = ws_in
    panels[p, 0] = a
    panels[p, 1] = b
    centre = 0.5 * (a + b)
    half = 0.5 * (b - a)
    ok = True
    for k in range(NODES.size):
        u = centre + half * NODES[k]
        w = gauss(u)
        x = s_o * u
        ok &= expect(F, G, 0, beta * u, tau, points, tol_in, atol_in, upts, bnd, tab, buf, inner)
        f = F(x)
        g = G(x)
        fbuf[k, 0] = f * inner[0, 0] * w
        fbuf[k, 1] = g * inner[0, 1] * w
        fbuf[k, 2] = abs(f) * inner[2, 0] * w
        fbuf[k, 3] = abs(g) * inner[2, 1] * w
    qk21(fbuf, half, panels, p)
    return ok


@jit
def _pair_points(points, s_o, beta, tau, upts):  # type: ignore[no-untyped-def]
    """Outer breakpoints ``(point, first width)`` into ``upts`` (2n, 2).

    Those of F(s_o u), then those of H(β u), whose features are smoothed over τ.
    """
    n_points = points.size
    for k in range(n_points):
        upts[k, 0] = points[k] / s_o
        upts[k, 1] = FEATURE / s_o
        upts[n_points + k, 0] = points[k] / beta if beta != 0.0 else 0.0
        smoothing = tau if 0.0 < tau < FEATURE else FEATURE
        upts[n_points + k, 1] = smoothing / abs(beta) if beta != 0.0 else math.inf


@jit
def _pair_tails_small(F, G, pair, points, ws_in, inner, r, totals, tol, atol):  # type: ignore[no-untyped-def]
    """Whether the integrand beyond ±r (Mills ratio at the ends) is below both targets."""
    s_o, beta, tau, tol_in, atol_in = pair
    w_pts, w_bnd, w_tab, w_buf = ws_in
    small = True
    for side in (-r, r):
        expect(
            F, G, 0, beta * side, tau, points, tol_in, atol_in, w_pts, w_bnd, w_tab, w_buf, inner
        )
        ends = (abs(F(s_o * side) * inner[0, 0]), abs(G(s_o * side) * inner[0, 1]))
        for c in range(2):
            if not ends[c] * gauss(r) / r <= max(tol * totals[1, c], atol[c]):
                small = False
    return small


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
    pair = (s_o, beta, tau, _INNER * tol, atol_in)
    upts, bnd, panels, fbuf = workspace(2 * points.size)
    ws_in = workspace(points.size)
    inner = np.empty((3, NC))
    _pair_points(points, s_o, beta, tau, upts)
    r = RANGE
    ok = True
    while True:
        n = boundaries(upts, 2 * points.size, r, GRADING, PANEL, bnd) - 1
        for p in range(n):
            ok &= _panel_pair(F, G, pair, points, ws_in, inner, bnd[p], bnd[p + 1], fbuf, panels, p)
        converged = False
        for _ in range(MAX_BISECTIONS + 1):
            p = next_panel(panels, n, 2, out, tol, atol)
            if p < 0:
                converged = p == -1
                break
            a, b = panels[p, 0], panels[p, 1]
            mid = 0.5 * (a + b)
            ok &= _panel_pair(F, G, pair, points, ws_in, inner, a, mid, fbuf, panels, p)
            ok &= _panel_pair(F, G, pair, points, ws_in, inner, mid, b, fbuf, panels, n)
            n += 1
        if r >= RANGE_MAX or _pair_tails_small(F, G, pair, points, ws_in, inner, r, out, tol, atol):
            break
        r = min(1.5 * r, RANGE_MAX)
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
        upts[k, 1] = FEATURE / s
    bnd = np.empty(n_boundaries(n_points, r, _COEF_PANEL))
    n_b = boundaries(upts, n_points, r, 2.0, _COEF_PANEL, bnd)
    n_q = XK.size
    roots = np.sqrt(np.arange(n_terms + 1.0))
    inv_roots = 1.0 / roots[1:]
    vals = np.zeros((NODES.size, NC))  # F and G times the weight at nodes and check points
    fw = np.empty((4, n_q))  # F and G times the Kronrod and the Gauss weights, per node
    nodes = np.empty(n_q)
    h = np.empty(n_q)
    h_prev = np.empty(n_q)
    for p in range(n_b - 1):
        centre = 0.5 * (bnd[p] + bnd[p + 1])
        half = 0.5 * (bnd[p + 1] - bnd[p])
        for q in range(NODES.size):
            g = centre + half * NODES[q]
            w = half * gauss(g)
            vals[q, 0] = F(s * g) * w if w > 0.0 else 0.0
            vals[q, 1] = G(s * g) * w if w > 0.0 else 0.0
        miss0 = 2.0 * misfit(vals, 0)  # an unresolved panel: error up to ∫|miss| |h_k|
        miss1 = 2.0 * misfit(vals, 1)
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


@jit
def _coefficient_tails(coef, mean, second, vprime, tol):  # type: ignore[no-untyped-def]
    """Absolute tails beyond the Hermite coefficients, shape (P, 2): of φ's variance, of E φ′².

    Variance (E φ′²) minus the squared coefficients, with ``tol`` times the diagonal entry
    (its error target) as a floor.
    """
    P, n_terms = coef.shape[1], coef.shape[2]
    tails = np.empty((P, 2))
    for i in range(P):
        var = second[i, i] - mean[i] ** 2
        head = 0.0
        dhead = coef[1, i, 0] ** 2
        for k in range(1, n_terms):
            head += coef[0, i, k] ** 2
            dhead += coef[1, i, k] ** 2
        tails[i, 0] = max(var - head, 0.0) + tol * abs(second[i, i])
        tails[i, 1] = max(vprime[i, i] - dhead, 0.0) + tol * abs(vprime[i, i])
    return tails


@jit
def _open_pairs(resolved):  # type: ignore[no-untyped-def]
    """Pairs ``(i, j)``, i < j, with at least one input not ``resolved``; shape (n_pairs, 2)."""
    P = resolved.size
    pairs = np.empty((P * (P - 1) // 2, 2), dtype=np.int64)
    n_pairs = 0
    for i in range(P):
        for j in range(i + 1, P):
            if not (resolved[i] and resolved[j]):
                pairs[n_pairs, 0] = i
                pairs[n_pairs, 1] = j
                n_pairs += 1
    return pairs[:n_pairs]


@jit
def _mehler_pair(coef, cerr, tails, i, j, rho, value, bound):  # type: ignore[no-untyped-def]
    """Mehler series of E φφ and E φ′φ′ for the pair (i, j) into ``value`` (2,), with its bound.

    ``bound`` (2,) receives the propagated coefficient errors plus the truncation bound
    |ρ|^K √(T_i T_j) (``tails`` of :func:`_coefficient_tails`).
    """
    power = 1.0
    for k in range(coef.shape[2]):
        for c in range(2):
            a, b = coef[c, i, k], coef[c, j, k]
            value[c] += a * b * power
            bound[c] += (cerr[c, i, k] * abs(b) + abs(a) * cerr[c, j, k]) * abs(power)
        power *= rho
    for c in range(2):
        bound[c] += abs(power) * math.sqrt(tails[i, c] * tails[j, c])


_F64 = types.float64[::1]
_M64 = types.float64[:, ::1]
_MOMENTS = (_F64, _M64, _M64)  # mean, second, vprime (and their error estimates)
_INPUTS = (SCALAR_FUNCTION, SCALAR_FUNCTION, _M64, _F64, types.boolean[::1], types.float64)


@jit(signatures=[types.void(*_INPUTS, types.float64[:, :, ::1], *_MOMENTS, *_MOMENTS)])
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
    :func:`limitsim.gaussian._moments.gauss_moments_hermite` with these coefficients when its error
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
    jit-compiled, serial (the inputs and pairs are independent, but run in sequence; see
    ``benchmarks/README.md``); writes into the outputs.
    """
    P = K.shape[0]
    n_terms = coef.shape[2]
    todo = np.flatnonzero(~resolved)
    cerr = np.zeros((2, P, n_terms))
    for t in range(todo.size):
        i = todo[t]
        out = np.empty((3, NC))
        upts, bnd, panels, fbuf = workspace(points.size)
        s = math.sqrt(max(K[i, i], 0.0))
        ok = expect(phi, dphi, 1, 0.0, s, points, tol, np.zeros(NC), upts, bnd, panels, fbuf, out)
        bad = 0.0 if ok else math.inf
        mean[i] = out[0, 0]
        second[i, i] = out[0, 1]
        vprime[i, i] = out[0, 2]
        mean_err[i] = out[2, 0] + bad
        second_err[i, i] = out[2, 1] + bad
        vprime_err[i, i] = out[2, 2] + bad
        _hermite_coefficients(phi, dphi, s, points, coef[:, i, :], cerr[:, i, :])
    tails = _coefficient_tails(coef, mean, second, vprime, tol)
    pairs = _open_pairs(resolved)
    for t in range(pairs.shape[0]):
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
        _mehler_pair(coef, cerr, tails, i, j, rho, value, bound)
        if bound[0] <= atol[0] and bound[1] <= atol[1]:
            second[i, j] = second[j, i] = value[0]
            vprime[i, j] = vprime[j, i] = value[1]
            second_err[i, j] = second_err[j, i] = bound[0]
            vprime_err[i, j] = vprime_err[j, i] = bound[1]
        else:
            atol_in = np.empty(2)
            atol_in[0] = _INNER * tol * math.sqrt(abs(second[n, n]))
            atol_in[1] = _INNER * tol * math.sqrt(abs(vprime[n, n]))
            out = np.empty((3, NC))
            ok = _expect_pair(phi, dphi, s_o, s_in, rho, points, tol, atol, atol_in, out)
            bad = 0.0 if ok else math.inf
            second[i, j] = second[j, i] = out[0, 0]
            vprime[i, j] = vprime[j, i] = out[0, 1]
            second_err[i, j] = second_err[j, i] = out[2, 0] + bad
            vprime_err[i, j] = vprime_err[j, i] = out[2, 1] + bad
