"""Command line: ``python -m derivations --check | --write``."""

from __future__ import annotations

import argparse
import sys

from derivations.emit import GENERATED_DIR, clear_numba_caches, generate_all


def main(argv: list[str] | None = None) -> int:
    """Regenerate every module and compare with (``--check``) or overwrite (``--write``) them."""
    parser = argparse.ArgumentParser(prog="python -m derivations", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    mode.add_argument("--write", action="store_true", help="rewrite the generated files")
    args = parser.parse_args(argv)
    generated = generate_all()
    stale = []
    for filename, text in generated.items():
        path = GENERATED_DIR / filename
        if not path.exists() or path.read_text() != text:
            stale.append(filename)
            if args.write:
                path.write_text(text)
    extra = sorted(
        p.name
        for p in GENERATED_DIR.glob("*.py")
        if p.name not in generated and p.name != "__init__.py"
    )
    if args.write:
        for name in extra:
            (GENERATED_DIR / name).unlink()
        clear_numba_caches()
        print(f"wrote {len(stale)} file(s); removed {len(extra)} extra")
        return 0
    if stale or extra:
        print(
            f"stale: {stale}, extra: {extra}; run `python -m derivations --write`, review, commit"
        )
        return 1
    print("generated code is fresh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
