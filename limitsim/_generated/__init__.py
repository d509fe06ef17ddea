"""Code emitted by ``derivations/`` (``python -m derivations --write``); never edit by hand."""
