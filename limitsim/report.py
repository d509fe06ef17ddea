"""Claims of the paper checked against measurements, and the ``report.md`` they form.

A :class:`Claim` holds a measured :class:`~limitsim.stats.Estimate` (value, 95% interval,
seeds), the paper's value or statement, where the claim comes from (its ``source``) and an
accepted range fixed from the paper or the theory before the data were seen.  The verdict is
computed, never typed in:

- *reproduced*: the 95% interval lies inside the accepted range;
- *not reproduced*: the interval lies entirely outside it;
- *inconclusive*: the interval straddles a boundary, the measurement is missing, or the claim
  cannot be judged for a stated reason (``undecided``: a failed control, an optimum at the
  edge of its grid), shown as ``inconclusive (reason)``.

``source`` starts with one of three words (:data:`SOURCES`): ``paper`` (the paper states it;
the figure or section and what it shows follow), ``extension`` (the theory predicts it but
the paper does not show it, e.g. an SGD version of an Adam-only figure, an n = ∞ version) or
``check`` (internal consistency of limitsim's routes).  The report counts the three kinds
separately, paper claims first, and lists checks in their own section.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from limitsim.stats import Estimate

__all__ = ["COLUMNS", "SOURCES", "VERDICTS", "Claim", "render_report", "verdict"]

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
SOURCES = ("paper", "extension", "check")
#: The claims table's columns, in order (tests and tools read them).
COLUMNS = (
    "experiment",
    "claim",
    "source",
    "quantity",
    "measured",
    "95% interval",
    "seeds",
    "paper",
    "accepted range",
    "verdict",
)


def verdict(estimate: Estimate, low: float, high: float, *, outside: bool = False) -> str:
    """Verdict of ``estimate``'s interval against the accepted range.

    Parameters
    ----------
    estimate : Estimate
    low, high : float
        The range [low, high] (infinite ends allowed).  A one-sided range is a strict sign
        claim: with ``high = ∞`` the interval must lie strictly above ``low``.
    outside : bool
        Accept the complement of [low, high] instead (e.g. "the optimum moves": a slope
        outside [−0.25, 0.25]).
    """
    lo, hi = estimate.low, estimate.high
    if math.isnan(lo) or math.isnan(hi) or math.isnan(estimate.value):
        return "inconclusive"
    # a one-sided range [low, ∞) or (−∞, high] is a strict sign claim: "grows" needs > low
    above = low < lo if math.isinf(high) else low <= lo
    below = hi < high if math.isinf(low) else hi <= high
    inside = above and below
    disjoint = hi < low or lo > high
    if outside:
        inside, disjoint = disjoint, inside
    if inside:
        return "reproduced"
    if disjoint:
        return "not reproduced"
    return "inconclusive"


@dataclass(frozen=True, kw_only=True, slots=True)
class Claim:
    """One claim with its measurement and verdict (module docstring).

    Attributes
    ----------
    experiment : str
        Experiment that measured it.
    claim : str
        The claim in words.
    source : str
        ``paper: <figure/section and what it shows>``, ``extension: <what the theory
        predicts>`` or ``check: <which routes must agree>``.
    quantity : str
        What was measured, including the regime (optimizer, depths, steps).
    estimate : Estimate
        The measurement, its 95% interval and the number of seeds.
    paper : str
        The paper's value or statement.
    low, high : float
        Accepted range, fixed before the data were seen.
    outside : bool
        Accept values outside [low, high] instead of inside.
    range_reason : str
        Where the accepted range comes from when the paper gives no number.
    undecided : str
        A reason that makes the verdict ``inconclusive (<reason>)`` whatever the interval
        (e.g. ``control failed``); empty when the interval decides.
    """

    experiment: str
    claim: str
    source: str
    quantity: str
    estimate: Estimate
    paper: str
    low: float
    high: float
    outside: bool = False
    range_reason: str = ""
    undecided: str = ""

    def __post_init__(self) -> None:
        kind = self.source.split(":", 1)[0].strip()
        if kind not in SOURCES:
            raise ValueError(
                f"source must start with one of {list(SOURCES)} and a colon, got {self.source!r}"
            )
        if not self.low <= self.high:
            raise ValueError(f"accepted range [{self.low}, {self.high}] is empty")

    @property
    def kind(self) -> str:
        """``paper``, ``extension`` or ``check``: the first word of :attr:`source`."""
        return self.source.split(":", 1)[0].strip()

    @property
    def verdict(self) -> str:
        """The verdict (module docstring); ``inconclusive (reason)`` when undecided."""
        if self.undecided:
            return f"inconclusive ({self.undecided})"
        return verdict(self.estimate, self.low, self.high, outside=self.outside)

    @property
    def decided(self) -> bool:
        """True for reproduced or not reproduced."""
        return self.verdict in VERDICTS[:2]


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def _count_line(title: str, claims: Sequence[Claim]) -> str:
    counts = [sum(c.verdict.startswith(v) for c in claims) for v in VERDICTS]
    inconclusive = len(claims) - counts[0] - counts[1]
    return (
        f"{title}: {counts[0]} reproduced, {counts[1]} not reproduced, "
        f"{inconclusive} inconclusive (of {len(claims)})"
    )


def _row(c: Claim) -> str:
    e = c.estimate
    interval = "—" if e.seeds is None and e.low == e.high else f"[{_fmt(e.low)}, {_fmt(e.high)}]"
    accepted = f"[{_fmt(c.low)}, {_fmt(c.high)}]"
    if c.outside:
        accepted = f"outside {accepted}"
    if c.range_reason:
        accepted += f" ({c.range_reason})"
    cells = (
        c.experiment,
        c.claim,
        c.source,
        c.quantity,
        _fmt(e.value),
        interval,
        "—" if e.seeds is None else str(e.seeds),
        c.paper,
        accepted,
        f"**{c.verdict}**",
    )
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render_report(
    claims: Sequence[Claim], *, profile: str, seed: int = 0, notes: Sequence[str] = ()
) -> str:
    """Markdown report: counts per kind, the claims table, the checks table, notes.

    Every claim is listed, whatever its verdict.  Paper claims come first, then extensions
    (one table), then checks (their own section).
    """
    kinds = {k: [c for c in claims if c.kind == k] for k in SOURCES}
    header = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    lines = [
        f"# limitsim claims report (profile `{profile}`, seed {seed})",
        "",
        _count_line("Paper claims", kinds["paper"]),
        "",
        _count_line("Extensions", kinds["extension"]),
        "",
        _count_line("Checks", kinds["check"]),
        "",
        "Verdict rule: the 95% interval lies inside the accepted range → reproduced; entirely "
        "outside → not reproduced; otherwise inconclusive.  Intervals over seeds use Student's "
        "t quantile for that many seeds (paired differences where two arms share seeds); "
        "`seeds` is `—` for deterministic rows, whose interval, if any, is a least-squares "
        "fit's.  Accepted ranges come from the paper or, where it gives no number, from the "
        "theory, as the row says.  Sources: `paper` (the paper states it), `extension` (the "
        "theory predicts it, the paper does not show it), `check` (internal consistency).",
        "",
        "## Paper claims and extensions",
        "",
        header,
        rule,
        *[_row(c) for c in kinds["paper"] + kinds["extension"]],
        "",
        "## Checks",
        "",
        header,
        rule,
        *[_row(c) for c in kinds["check"]],
    ]
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"
