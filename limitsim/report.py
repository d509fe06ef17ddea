"""Claims of the paper checked against measurements, and the ``report.md`` they form.

A :class:`Claim` holds a measured number with its uncertainty, the paper's value or statement,
and an acceptance rule.  The verdict is computed, never typed in:

- *reproduced*: the measured interval [m − 2u, m + 2u] lies inside the accepted range;
- *not reproduced*: the interval lies entirely outside the accepted range;
- *inconclusive*: the interval straddles a boundary of the range (or the measurement is
  missing/NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Claim", "render_report", "verdict"]

VERDICTS = ("reproduced", "not reproduced", "inconclusive")


def verdict(measured: float, uncertainty: float, low: float, high: float) -> str:
    """Verdict for a measurement ``measured ± uncertainty`` against the range [low, high]."""
    if math.isinf(measured) and uncertainty == 0:  # e.g. an optimum lost to divergence
        return "reproduced" if low <= measured <= high else "not reproduced"
    if not (math.isfinite(measured) and math.isfinite(uncertainty)) or uncertainty < 0:
        return "inconclusive"
    lo, hi = measured - 2 * uncertainty, measured + 2 * uncertainty
    if low <= lo and hi <= high:
        return "reproduced"
    if hi < low or lo > high:
        return "not reproduced"
    return "inconclusive"


@dataclass(frozen=True)
class Claim:
    """One claim of the paper with its measurement.

    Attributes
    ----------
    experiment : str
        Experiment (figure) that measured it.
    statement : str
        The paper's claim in words, with its source (claim, figure or section).
    quantity : str
        What was measured.
    measured, uncertainty : float
        The measurement and its standard error (0 for exact computations).
    paper : str
        The paper's value or statement.
    low, high : float
        Accepted range for the quantity.
    """

    experiment: str
    statement: str
    quantity: str
    measured: float
    uncertainty: float
    paper: str
    low: float
    high: float

    @property
    def verdict(self) -> str:
        """reproduced / not reproduced / inconclusive (module docstring)."""
        return verdict(self.measured, self.uncertainty, self.low, self.high)


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def render_report(claims: Sequence[Claim], *, profile: str, notes: Sequence[str] = ()) -> str:
    """Markdown table of the claims (every claim is listed, whatever its verdict)."""
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    lines = [
        f"# limitsim claims report (profile `{profile}`)",
        "",
        ", ".join(f"{n} {v}" for v, n in counts.items()),
        "",
        "Verdict rule: the measured interval (±2 standard errors) lies inside the accepted range "
        "→ reproduced; entirely outside → not reproduced; otherwise inconclusive.",
        "",
        "| experiment | claim | quantity | measured | ± | paper | accepted range | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        cells = (
            c.experiment,
            c.statement,
            c.quantity,
            _fmt(c.measured),
            _fmt(c.uncertainty),
            c.paper,
            f"[{_fmt(c.low)}, {_fmt(c.high)}]",
            f"**{c.verdict}**",
        )
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"
