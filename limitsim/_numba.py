"""The single numba policy point: every jitted function in limitsim goes through :func:`jit`.

Policy (``shared/style.md`` §4): ``cache=True`` (compiled code is reused across processes),
``error_model="numpy"`` (division by zero gives inf/NaN like numpy, no exception), ``nogil``
(kernels run concurrently on Python threads, e.g. ``train_finite_batch(threads=...)``), and
no ``fastmath`` (NaN/inf semantics and bit-reproducibility over a few percent of speed).
``parallel=True`` is for top-level kernels whose ``prange`` loop runs over independent
items; their results must not depend on the thread count (tested).

Cache freshness.  numba keys a function's cache entry to the source of *its own file* only
(the file's hash, or its modification time and size in older numba; numba issue #1833).  A
kernel that calls or inlines a jitted function from another module embeds that function's
machine code, so after a change to the callee's module alone numba would load the caller's
stale code: an editable install gives silently wrong numbers after ``git pull``.  The compiler
flags set here are not part of numba's cache key either.  So every cache entry of a function
compiled by :func:`jit` is also keyed to :func:`package_fingerprint`, a hash of the source of
the whole package (``limitsim/**/*.py``, the checked-in ``_generated/`` modules included):
any change to any module invalidates all of limitsim's compiled code, and an unchanged package
loads from the cache in every process.  This coarse key is chosen over tracking each kernel's
callees (numba has no interface for that; its pull request #8396 is unfinished); the price is
one full recompilation per package change, what a fresh clone pays anyway.

User nonlinearities (modules rendered into ``$LIMITSIM_CACHE_DIR`` by
:mod:`limitsim.nonlinearities.registry`) are compiled by :func:`jit` and keyed the same way:
they call no package code, but their compiled code depends on the policy of this module.

The key is added by a numba cache locator registered first in numba's list of locators when
this module is imported.  It applies to the functions compiled by :func:`jit` only, wraps the
locator numba would have chosen (same cache directory and file names) and stamps the entry
with numba's own stamp and the fingerprint together.  Setting ``NUMBA_CACHE_LOCATOR_CLASSES``
replaces numba's list, and with it this key.  Costs: ``benchmarks/README.md``, "Cache
freshness".
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal, overload

import numba as nb
from numba.core import caching as _caching

__all__ = [
    "SCALAR_FUNCTION",
    "get_num_threads",
    "jit",
    "package_fingerprint",
    "prange",
    "set_num_threads",
    "types",
]

prange = nb.prange
types = nb.types
set_num_threads = nb.set_num_threads
get_num_threads = nb.get_num_threads

# The limitsim package directory, whose sources :func:`package_fingerprint` hashes.
_PACKAGE_ROOT = Path(__file__).resolve().parent

# Python functions compiled by `jit`: the only ones whose cache entries get the package key.
_COMPILED_BY_JIT: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


@overload
def jit(
    fn: Callable[..., Any],
    *,
    parallel: bool = False,
    inline: Literal["never", "always"] = "never",
    signatures: list[Any] | None = None,
) -> Any: ...


@overload
def jit(
    fn: None = None,
    *,
    parallel: bool = False,
    inline: Literal["never", "always"] = "never",
    signatures: list[Any] | None = None,
) -> Callable[[Callable[..., Any]], Any]: ...


def jit(
    fn: Callable[..., Any] | None = None,
    *,
    parallel: bool = False,
    inline: Literal["never", "always"] = "never",
    signatures: list[Any] | None = None,
) -> Any:
    """``numba.njit`` with the project policy: cache, numpy error model, nogil, no fastmath.

    Use as ``@jit`` or ``@jit(parallel=True)``.  Kernels that take a nonlinearity as an
    argument are compiled eagerly for ``signatures`` built with :data:`SCALAR_FUNCTION`:
    a dispatcher passed lazily is typed by its identity, which differs between processes, so
    its compiled kernel would never be found in the cache again, and every process would
    recompile it (the cost: ``benchmarks/README.md``).  The cache entries are keyed to the
    source of the whole package (module docstring, "Cache freshness").
    """
    deco: Any = nb.njit(
        signatures,
        cache=True,
        error_model="numpy",
        nogil=True,
        parallel=parallel,
        inline=inline,
    )

    def compile_with_policy(function: Callable[..., Any]) -> Any:
        _COMPILED_BY_JIT.add(function)  # before numba creates its cache, which looks it up
        return deco(function)

    return compile_with_policy if fn is None else compile_with_policy(fn)


@cache
def package_fingerprint(root: Path = _PACKAGE_ROOT) -> str:
    """SHA-256 (hex) of the Python sources under ``root``, computed once per process.

    Hashes every ``*.py`` file under ``root`` (recursively) in the order of its relative
    POSIX path: the length-prefixed path, then the length-prefixed bytes.  Any added, removed,
    renamed or edited source file changes the result; bytecode and numba cache files
    (``__pycache__``) do not enter it.
    """
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        name = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        for part in (name, data):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    return digest.hexdigest()


class _PackageKeyedLocator(_caching._CacheLocator):
    """numba cache locator for functions compiled by :func:`jit`.

    Wraps the locator numba would have chosen for the function (same cache directory, same
    file names) and returns as source stamp numba's own stamp together with
    :func:`package_fingerprint`, so that an index written for other package sources is
    treated as stale.  Every other function is left to numba's locators.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        path: str = self._inner.get_cache_path()
        return path

    def get_source_stamp(self) -> tuple[Any, str]:
        return self._inner.get_source_stamp(), package_fingerprint()

    def get_disambiguator(self) -> str:
        disambiguator: str = self._inner.get_disambiguator()
        return disambiguator

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> _PackageKeyedLocator | None:
        if py_func not in _COMPILED_BY_JIT:
            return None
        for numba_locator in _LOCATORS:
            if numba_locator is not cls:
                inner = numba_locator.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


# numba's locator classes, tried in order (the class holding them is `_CacheImpl` in older numba).
_CACHE_IMPL: Any = vars(_caching).get("CacheImpl") or vars(_caching)["_CacheImpl"]
_LOCATORS: list[Any] = _CACHE_IMPL._locator_classes
_LOCATORS[:] = [
    _PackageKeyedLocator,
    *(c for c in _LOCATORS if (c.__module__, c.__qualname__) != (__name__, "_PackageKeyedLocator")),
]


#: First-class type of a jitted scalar function float64 -> float64 (a nonlinearity φ, φ′).
SCALAR_FUNCTION = nb.types.FunctionType(nb.types.float64(nb.types.float64))
