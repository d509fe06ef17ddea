"""The memory guard of the routes: refuse, before allocating, what cannot fit in this machine."""

from __future__ import annotations

import os

__all__ = ["check_memory"]


def check_memory(need: int, *, what: str, state: str, advice: str) -> None:
    """ValueError when ``need`` bytes exceed this machine's physical memory.

    Parameters
    ----------
    need : int
        Estimated bytes of the arrays about to be allocated.
    what : str
        The configuration, starting the message (``"n_particles=4096 at depth=64"``).
    state : str
        What the bytes hold (``"particle state"``).
    advice : str
        How to make it fit, ending the message.

    Raises
    ------
    ValueError
        ``"{what} needs about X GiB of {state}, more than this machine's Y GiB; {advice}"``.
        Without ``os.sysconf`` (Windows) nothing is checked.
    """
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): no check
        return
    if need > physical:
        raise ValueError(
            f"{what} needs about {need / 2**30:.1f} GiB of {state}, more than this machine's "
            f"{physical / 2**30:.1f} GiB; {advice}"
        )
