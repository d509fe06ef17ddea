"""Progress bars: tqdm without its monitor thread.

tqdm starts a monitor thread with its first bar (even a disabled one) and leaves it running.
A thread in the parent process makes sweeps start their local workers with ``spawn`` instead
of ``fork`` (:func:`limitsim.sweeps._exec.start_method`), which starts workers far more slowly
(``benchmarks/README.md``).  The bars of limitsim advance once per training step or grid
point and need no monitor.
"""

from __future__ import annotations

from tqdm.auto import tqdm

__all__ = ["Bar"]


class Bar(tqdm):  # type: ignore[misc]
    """``tqdm.auto.tqdm`` that starts no monitor thread."""

    monitor_interval = 0
