"""Verdict logic of the claims report, on synthetic measurements with known answers."""

import math

import pytest

from limitsim.report import Claim, render_report, verdict


@pytest.mark.parametrize(
    "measured, se, expected",
    [
        (0.5, 0.01, "reproduced"),  # 0.48..0.52 inside [0.35, 0.65]
        (0.0, 0.01, "not reproduced"),  # entirely below
        (0.36, 0.02, "inconclusive"),  # 0.32..0.40 straddles 0.35
        (0.9, 0.0, "not reproduced"),
        (math.nan, 0.1, "inconclusive"),
        (0.5, math.inf, "inconclusive"),
    ],
)
def test_verdict(measured, se, expected):
    assert verdict(measured, se, 0.35, 0.65) == expected


def test_report_lists_every_claim():
    claims = [
        Claim("e", "good", "q", 0.5, 0.01, "1/2", 0.35, 0.65),
        Claim("e", "bad", "q", 0.0, 0.01, "1/2", 0.35, 0.65),
    ]
    text = render_report(claims, profile="tiny")
    assert "1 reproduced, 1 not reproduced, 0 inconclusive" in text
    assert "**not reproduced**" in text and "| e | bad |" in text
    piped = render_report([Claim("e", "s", "|x|", 1.0, 0.0, "p", 0, 2)], profile="tiny")
    assert "\\|x\\|" in piped  # a pipe in a cell does not break the table
