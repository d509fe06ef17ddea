"""Render every derivation into the source text of its ``limitsim/_generated`` module."""

from __future__ import annotations

from pathlib import Path

from limitsim._codegen import render_module

GENERATED_DIR = Path(__file__).resolve().parent.parent / "limitsim" / "_generated"
HOW = "python -m derivations --write"


def generate_all() -> dict[str, str]:
    """Map each generated file name to its text (pure: no I/O)."""
    from derivations import activations, exponents, gaussian

    out = {}
    for module in (activations, gaussian, exponents):
        topic = module.__name__.rsplit(".", 1)[-1]
        out[f"{topic}.py"] = render_module(
            module.derive(),
            origin=f"derivations/{topic}.py",
            how=HOW,
            docstring=module.GENERATED_DOC,
            decorate=getattr(module, "JIT", True),
        )
    return out


def clear_numba_caches() -> None:
    """Delete numba cache files under ``limitsim/`` (they ignore edits in other files)."""
    for pattern in ("*.nbi", "*.nbc"):
        for path in GENERATED_DIR.parent.rglob(pattern):
            path.unlink()
