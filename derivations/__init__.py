"""Symbolic derivations (sympy) that emit the checked-in code under ``limitsim/_generated/``.

Run ``python -m derivations --write`` to regenerate and ``python -m derivations --check`` to
verify that the checked-in files are fresh.  ``limitsim`` never imports this package.
"""
