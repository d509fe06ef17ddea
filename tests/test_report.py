"""Verdict logic and format of the claims report, on synthetic measurements with known answers."""

import math

import numpy as np
import pytest

from limitsim.report import COLUMNS, Claim, render_report, verdict
from limitsim.stats import Estimate, exact, paired_interval, t_interval


def claim(estimate, low=0.35, high=0.65, *, source="paper: Fig. 0", **kwargs):
    return Claim(
        experiment="e",
        claim="c",
        source=source,
        quantity="q",
        estimate=estimate,
        paper="1/2",
        low=low,
        high=high,
        **kwargs,
    )


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (0.48, 0.52, "reproduced"),  # inside [0.35, 0.65]
        (0.0, 0.1, "not reproduced"),  # entirely below
        (0.32, 0.40, "inconclusive"),  # straddles 0.35
        (0.9, 0.9, "not reproduced"),
        (math.nan, 0.6, "inconclusive"),
    ],
)
def test_verdict_of_intervals(low, high, expected):
    e = Estimate(value=(low + high) / 2 if math.isfinite(low) else 0.5, low=low, high=high, seeds=8)
    assert verdict(e, 0.35, 0.65) == expected


def test_two_seeds_are_not_enough_where_eight_are():
    """The same mean and spread: 2 seeds (t = 12.7) straddle, 8 seeds (t = 2.36) decide."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal(8)
    base = (base - base.mean()) / base.std(ddof=1) * 0.05 + 0.5  # mean 0.5, sd 0.05
    two = np.array([0.5 - 0.05 / math.sqrt(2), 0.5 + 0.05 / math.sqrt(2)])  # sd 0.05
    assert claim(t_interval(two)).verdict == "inconclusive"
    assert claim(t_interval(base)).verdict == "reproduced"


def test_paired_difference_decides_where_unpaired_does_not():
    """Two arms with a large shared seed effect: the paired difference is clearly positive."""
    rng = np.random.default_rng(4)
    shared = rng.normal(0.0, 1.0, size=8)
    a, b = shared + 0.2, shared + rng.normal(0.0, 0.02, size=8)
    separate = t_interval(a).low - t_interval(b).high  # overlapping intervals
    assert separate < 0
    assert claim(paired_interval(a, b), 0.0, math.inf).verdict == "reproduced"


def test_outside_range_and_undecided():
    moved = exact(-0.6)
    assert claim(moved, -0.25, 0.25, outside=True).verdict == "reproduced"
    assert claim(exact(0.1), -0.25, 0.25, outside=True).verdict == "not reproduced"
    failed = claim(moved, -0.25, 0.25, outside=True, undecided="control failed")
    assert failed.verdict == "inconclusive (control failed)" and not failed.decided


def test_one_sided_ranges_are_strict():
    """ "grows" with an exact zero growth is not reproduced; inclusive two-sided ranges."""
    assert claim(exact(0.0), 0.0, math.inf).verdict == "inconclusive"
    assert claim(exact(0.1), 0.0, math.inf).verdict == "reproduced"
    assert claim(exact(1.0), 1.0, 1.0).verdict == "reproduced"


def test_source_must_name_its_kind():
    assert claim(exact(0.5), source="extension: SGD version").kind == "extension"
    with pytest.raises(ValueError, match="source must start"):
        claim(exact(0.5), source="Fig. 3")
    with pytest.raises(ValueError, match="empty"):
        claim(exact(0.5), 1.0, 0.0)


def test_claim_is_keyword_only():
    with pytest.raises(TypeError):
        Claim("e", "c", "paper: x", "q", exact(0.5), "p", 0.0, 1.0)  # type: ignore[misc]


def test_report_counts_kinds_and_lists_checks_separately():
    claims = [
        claim(exact(0.5)),
        claim(exact(0.0)),
        claim(exact(0.5), source="extension: e"),
        claim(Estimate(value=0.5, low=0.3, high=0.7, seeds=8), source="check: c"),
    ]
    text = render_report(claims, profile="tiny", seed=3)
    lines = text.splitlines()
    assert lines[0] == "# limitsim claims report (profile `tiny`, seed 3)"
    assert lines[2] == "Paper claims: 1 reproduced, 1 not reproduced, 0 inconclusive (of 2)"
    assert "Extensions: 1 reproduced, 0 not reproduced, 0 inconclusive (of 1)" in text
    assert "Checks: 0 reproduced, 0 not reproduced, 1 inconclusive (of 1)" in text
    header = "| " + " | ".join(COLUMNS) + " |"
    assert text.count(header) == 2  # claims table and checks table
    main, checks = text.split("## Checks")
    assert "check: c" in checks and "check: c" not in main
    assert "| — | — |" in main  # an exact row: no interval, no seeds
    assert "| [0.3, 0.7] | 8 |" in checks


def test_columns_are_the_contract():
    assert COLUMNS == (
        "experiment", "claim", "source", "quantity", "measured", "95% interval", "seeds",
        "paper", "accepted range", "verdict",
    )  # fmt: skip


def test_pipes_in_cells_are_escaped():
    text = render_report([claim(exact(1.0), 0, 2, source="paper: |x|")], profile="tiny")
    assert "\\|x\\|" in text
