"""The checked-in generated code equals what the derivations produce now."""

import pytest

from derivations.emit import GENERATED_DIR, generate_all


@pytest.fixture(scope="module")
def generated():
    return generate_all()


def test_no_missing_or_extra_files(generated):
    present = {p.name for p in GENERATED_DIR.glob("*.py")} - {"__init__.py"}
    assert present == set(generated), "stale: run `python -m derivations --write`, review, commit"


@pytest.mark.parametrize("name", ["activations.py", "gaussian.py", "exponents.py"])
def test_fresh(generated, name):
    text = (GENERATED_DIR / name).read_text()
    assert text == generated[name], "stale: run `python -m derivations --write`, review, commit"
