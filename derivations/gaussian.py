"""Closed-form Gaussian expectations of nonlinearities (route R1, ``tp6-notes.md`` §3.6).

For z = (z_i, z_j) ~ N(0, K) with standard deviations s_i, s_j and correlation ρ, route R1
needs the second moment M = E φ(z_i)φ(z_j), the mean E φ(z_i) (so that the MS covariance is
Σ_φ = M − E φ(z_i) E φ(z_j)) and V_φ′ = E φ′(z_i)φ′(z_j).

Derivation by Price's theorem, ∂/∂ρ E[f(u)g(v)] = E[f′(u)g′(v)] for unit-variance (u, v):

* orthant probability P(ρ) = E[1(u>0)1(v>0)]: P(0) = 1/4 and ∂P/∂ρ = p_{u,v}(0, 0)
  (the bivariate normal density at the origin);
* relu moment J(ρ) = E[relu(u)relu(v)]: J(0) = (E relu(u))² and ∂J/∂ρ = P(ρ).

The positively homogeneous family φ(z) = c₊ relu(z) − c₋ relu(−z) (c₊ z for z > 0, c₋ z for
z < 0: linear (1, 1), relu (1, 0), abs (1, −1), leaky relu (1, s)) then follows by
bilinearity, with E[relu(u)relu(−v)] = J(−ρ) and E[1(u>0)1(v<0)] = P(−ρ).

For erf, with the normalised correlation r = 2K_ij / sqrt((1 + 2K_ii)(1 + 2K_jj)):
V = E φ′φ′ = (4/π) det(I + 2K)^(-1/2) (a Gaussian integral of exp(−zᵀz)), and Price's
theorem in K_ij from K_ij = 0 (where E erf(u) erf(v) = 0 by oddness) gives M.
"""

from __future__ import annotations

import sympy as sp

from limitsim._codegen import ScalarFunction

GENERATED_DOC = "Closed-form Gaussian expectations: homogeneous family and erf (Price's theorem)."

rho, r = sp.symbols("rho r", real=True)
theta = sp.Symbol("theta", real=True)
s_i, s_j = sp.symbols("s_i s_j", nonnegative=True)
c_plus, c_minus = sp.symbols("c_plus c_minus", real=True)
k_ii, k_jj = sp.symbols("k_ii k_jj", nonnegative=True)
k_ij = sp.Symbol("k_ij", real=True)
z = sp.Symbol("z", real=True)


def normal_pdf(u: sp.Expr, v: sp.Expr, corr: sp.Expr) -> sp.Expr:
    """Density of a unit-variance bivariate normal with correlation ``corr`` at (u, v)."""
    det = 1 - corr**2
    return sp.exp(-(u**2 - 2 * corr * u * v + v**2) / (2 * det)) / (2 * sp.pi * sp.sqrt(det))


def orthant() -> sp.Expr:
    """P(ρ) = E[1(u>0)1(v>0)]."""
    slope = normal_pdf(0, 0, r)
    return sp.Rational(1, 4) + sp.integrate(slope, (r, 0, rho))


def relu_moment() -> sp.Expr:
    """J(ρ) = E[relu(u) relu(v)]."""
    mean = sp.integrate(z * sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi), (z, 0, sp.oo))
    return sp.simplify(mean**2 + sp.integrate(orthant().subs(rho, r), (r, 0, rho)))


def derive() -> list[ScalarFunction]:
    """Closed forms as functions of (s_i, s_j, ρ) or of the kernel entries."""
    P, J = orthant(), relu_moment()
    mean_relu = sp.integrate(z * sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi), (z, 0, sp.oo))
    second = s_i * s_j * ((c_plus**2 + c_minus**2) * J - 2 * c_plus * c_minus * J.subs(rho, -rho))
    vprime = (c_plus**2 + c_minus**2) * P + 2 * c_plus * c_minus * P.subs(rho, -rho)
    mean = s_i * (c_plus - c_minus) * mean_relu

    kernel = sp.Matrix([[k_ii, k_ij], [k_ij, k_jj]])
    erf_vprime = (4 / sp.pi) / sp.sqrt((sp.eye(2) + 2 * kernel).det())
    scale = sp.sqrt((1 + 2 * k_ii) * (1 + 2 * k_jj))
    # Price's theorem in k_ij; substituting k = scale·r/2 turns the slope into (2/π)/sqrt(1 − r²).
    slope = sp.factor(sp.expand(erf_vprime.subs(k_ij, scale * r / 2) * scale / 2))
    slope = sp.simplify(sp.powsimp(slope, force=True))
    erf_second = sp.integrate(slope, (r, 0, rho)).subs(rho, 2 * k_ij / scale)
    args_h = (s_i, s_j, rho, c_plus, c_minus)
    args_angle = (s_i, s_j, rho, theta, c_plus, c_minus)
    second_angle = sp.simplify(second).subs(sp.asin(rho), theta)
    vprime_angle = sp.simplify(vprime).subs(sp.asin(rho), theta)
    angle = "θ = asin ρ computed by the caller (limitsim.gaussian._asin.asin)"
    args_k = (k_ii, k_jj, k_ij)
    return [
        ScalarFunction(
            "homogeneous_second_moment",
            args_h,
            (sp.simplify(second),),
            f"E φ(z_i)φ(z_j) for φ = c₊relu − c₋relu(−·); |ρ| ≤ 1: {sp.latex(second)}.",
        ),
        ScalarFunction(
            "homogeneous_mean",
            (s_i, c_plus, c_minus),
            (sp.simplify(mean),),
            f"E φ(z) for z ~ N(0, s_i²): {sp.latex(mean)}.",
        ),
        ScalarFunction(
            "homogeneous_vprime",
            args_h,
            (sp.simplify(vprime),),
            f"E φ′(z_i)φ′(z_j); |ρ| ≤ 1: {sp.latex(vprime)}.",
        ),
        ScalarFunction(
            "homogeneous_second_moment_angle",
            args_angle,
            (second_angle,),
            f"homogeneous_second_moment with {angle}: {sp.latex(second_angle)}.",
        ),
        ScalarFunction(
            "homogeneous_vprime_angle",
            args_angle,
            (vprime_angle,),
            f"homogeneous_vprime with {angle}: {sp.latex(vprime_angle)}.",
        ),
        ScalarFunction(
            "erf_second_moment",
            args_k,
            (erf_second,),
            f"E erf(z_i) erf(z_j) (mean 0): {sp.latex(erf_second)}.",
        ),
        ScalarFunction(
            "erf_vprime",
            args_k,
            (erf_vprime,),
            f"E erf′(z_i) erf′(z_j): {sp.latex(erf_vprime)}.",
        ),
    ]
