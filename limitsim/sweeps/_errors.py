"""The errors of a result store: unusable, incompatible, or holding damaged result files.

Every error names the store and says what is intact and how to recover.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "DamagedResultError",
    "DamagedResultWarning",
    "ExperimentsFailed",
    "IncompatibleStoreError",
    "PointsFailed",
    "StoreError",
]


class StoreError(RuntimeError):
    """The store cannot be used or written (the message says why and what is intact)."""


class IncompatibleStoreError(StoreError):
    """The store was written by another schema, limitsim version or point function."""


class DamagedResultError(StoreError):
    """Result files that are missing or do not match their recorded SHA-256.

    Attributes
    ----------
    damaged : dict
        Point key → what is wrong with its file.
    """

    def __init__(self, store: Path, damaged: Mapping[str, str]) -> None:
        self.damaged = dict(damaged)
        shown = "; ".join(f"point {k[:12]}…: {why}" for k, why in list(self.damaged.items())[:5])
        more = f" (and {len(self.damaged) - 5} more)" if len(self.damaged) > 5 else ""
        #: "store S: N damaged result file(s): point …: why; …"
        self.summary = f"store {store}: {len(self.damaged)} damaged result file(s): {shown}{more}"
        super().__init__(
            f"{self.summary}. No damaged result was used; run the sweep again "
            "(`limitsim sweep run`) to move them to quarantine/ and recompute their points."
        )


class DamagedResultWarning(UserWarning):
    """Damaged result files were moved to ``quarantine/`` and their points recomputed."""


class PointsFailed(RuntimeError):
    """Points of a sweep raised (a bug in the point function, or a lost worker).

    A diverged point is a result (NaN); a failed one is not, and an experiment must not turn it
    into a silent NaN.  The failures stay recorded in the store; running the experiment again
    retries them (the other points are kept).

    Attributes
    ----------
    name : str
        The sweep (store) name.
    count : int
        Number of failed points.
    first_error : str
        The last line of the first failed point's error text.
    """

    def __init__(self, name: str, count: int, first_error: str) -> None:
        self.name, self.count, self.first_error = name, count, first_error
        super().__init__(
            f"sweep {name!r}: {count} point(s) failed; first error: {first_error} "
            "(the other points are kept; run again to retry the failed ones)"
        )


class ExperimentsFailed(RuntimeError):
    """Experiments whose sweeps had failed points (:class:`PointsFailed`); raised by
    :func:`limitsim.figures.make_figures` after the report of the others is written."""
