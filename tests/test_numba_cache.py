"""numba cache entries of limitsim are keyed to the source of the whole package (limitsim._numba).

numba alone keys a cache entry to the caller's own file, so a caller that inlines or calls a
jitted function from another module keeps its stale machine code after a change to that module
only (numba issue #1833).  The subprocess test builds a small package of two modules next to a
copy of ``limitsim/_numba.py`` and checks that a change to the callee's file reaches a new
process, that an unchanged package loads from the cache, and, as a control, that numba's own
locators alone would return the stale result.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from limitsim import _numba, nonlinearity
from limitsim._numba import jit, package_fingerprint

ROOT = Path(__file__).resolve().parents[1]

CALLEE = """from limitsim._numba import jit


@jit(inline="always")
def offset(x):
    return x + {offset}


@jit
def scale(x):
    return {scale} * x
"""

CALLER = """from limitsim._numba import jit
from limitsim.callee import offset, scale


@jit
def combined(x):
    return scale(offset(x))
"""

# Run in a new interpreter: `combined(1.0)` and whether it came from the cache.  With the
# argument "numba", limitsim's locator is removed first (numba's own behaviour, the control).
RUN = """import json, sys
from limitsim import _numba
assert _numba.__file__.startswith(sys.argv[1]), _numba.__file__
if sys.argv[2] == "numba":
    _numba._LOCATORS.remove(_numba._PackageKeyedLocator)
from limitsim.caller import combined
value = combined(1.0)
stats = combined.stats
print(json.dumps([value, sum(stats.cache_hits.values()), sum(stats.cache_misses.values())]))
"""


def _fingerprint(root):
    return package_fingerprint.__wrapped__(root)  # not memoised: the files change here


def test_fingerprint_changes_with_any_source_file_and_only_with_sources(tmp_path):
    (tmp_path / "sub" / "__pycache__").mkdir(parents=True)
    (tmp_path / "a.py").write_text("A = 1\n")
    (tmp_path / "sub" / "b.py").write_text("B = 2\n")
    first = _fingerprint(tmp_path)
    assert _fingerprint(tmp_path) == first
    (tmp_path / "sub" / "__pycache__" / "b.f-3.py311.nbi").write_bytes(b"index")
    (tmp_path / "notes.txt").write_text("not a source")
    assert _fingerprint(tmp_path) == first
    (tmp_path / "sub" / "b.py").write_text("B = 3\n")  # same size, other bytes
    edited = _fingerprint(tmp_path)
    assert edited != first
    (tmp_path / "sub" / "b.py").rename(tmp_path / "sub" / "c.py")
    renamed = _fingerprint(tmp_path)
    assert renamed not in (first, edited)
    (tmp_path / "d.py").write_text("")
    assert _fingerprint(tmp_path) not in (first, edited, renamed)
    # a path/content boundary cannot be shifted: "ab" + "" differs from "a" + "b"
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir(), right.mkdir()
    (left / "ab.py").write_text("")
    (right / "a.py").write_text("b")
    assert _fingerprint(left) != _fingerprint(right)


def test_package_fingerprint_is_memoised_and_covers_generated_code():
    assert package_fingerprint() is package_fingerprint()
    root = Path(_numba.__file__).resolve().parent
    assert (root / "_generated" / "activations.py").is_file()
    assert package_fingerprint() == _fingerprint(root)


def test_cache_entries_of_jit_functions_are_keyed_to_the_package(tmp_path):
    from limitsim.gaussian import _moments

    keyed = [_moments._std_and_correlation, nonlinearity("x*erf(x)").phi]  # package, user
    for dispatcher in keyed:
        stamp = dispatcher._cache._impl.locator.get_source_stamp()
        assert stamp[1] == package_fingerprint()

    def plain(x):
        return x + 1.0

    other = numba.njit(cache=True)(plain)  # not compiled by limitsim's jit: numba's own key
    assert not isinstance(other._cache._impl.locator, _numba._PackageKeyedLocator)
    assert isinstance(jit(plain)._cache._impl.locator, _numba._PackageKeyedLocator)


@pytest.fixture
def package(tmp_path):
    """A package ``limitsim`` of ``_numba.py`` (this checkout's) and two modules, and a run."""
    pkg = tmp_path / "src" / "limitsim"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    shutil.copy(ROOT / "limitsim" / "_numba.py", pkg / "_numba.py")
    (pkg / "caller.py").write_text(CALLER)
    (tmp_path / "run.py").write_text(RUN)

    def write_callee(offset, scale):
        (pkg / "callee.py").write_text(CALLEE.format(offset=offset, scale=scale))

    def run(cache, mode="limitsim"):
        env = dict(os.environ, PYTHONPATH=str(tmp_path / "src"), NUMBA_CACHE_DIR=str(cache))
        env.pop("NUMBA_CACHE_LOCATOR_CLASSES", None)
        out = subprocess.run(
            [sys.executable, str(tmp_path / "run.py"), str(pkg), mode],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        value, hits, misses = json.loads(out.stdout.strip().splitlines()[-1])
        return value, hits, misses

    return write_callee, run


def test_change_to_a_callee_module_alone_reaches_the_compiled_caller(package, tmp_path):
    write_callee, run = package
    cache = tmp_path / "numba_cache"
    write_callee("1.0", "2.0")
    assert run(cache) == (4.0, 0, 1)  # compiled
    assert run(cache) == (4.0, 1, 0)  # unchanged package: loaded from the cache
    write_callee("2.0", "2.0")  # the inlined callee, same file size
    assert run(cache) == (6.0, 0, 1)
    assert run(cache) == (6.0, 1, 0)
    write_callee("2.0", "3.0")  # the called (not inlined) callee
    assert run(cache) == (9.0, 0, 1)


def test_numba_alone_would_load_the_stale_caller(package, tmp_path):
    write_callee, run = package
    cache = tmp_path / "numba_cache"
    write_callee("1.0", "2.0")
    assert run(cache, "numba") == (4.0, 0, 1)
    write_callee("2.0", "2.0")
    # stale: the bug the package key prevents (should numba fix issue #1833, this fails, and
    # the key may be reconsidered)
    assert run(cache, "numba") == (4.0, 1, 0)
