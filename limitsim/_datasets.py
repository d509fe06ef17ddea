"""The fields of the dataset tasks: digits, synthetic tasks and local CIFAR-10.

Every loader returns the keyword arguments of a :class:`limitsim.Task` (``X``, ``Y``, ``loss``,
``eval_X``, ``eval_Y``, ``name``); :mod:`limitsim.data` and :meth:`limitsim.Task.from_dataset`
turn them into the Task.  This module does not import :mod:`limitsim.task`, so the task
module can build on it (the dependency runs one way).  Step ``t`` trains on ``X[t]`` (B, d)
with targets ``Y[t]``
(B, e).  Mini-batches are drawn without replacement within an epoch (a fresh permutation per
epoch from ``np.random.default_rng(seed)``; a batch may straddle two epochs).  Held-out data,
where a loader has some, becomes ``eval_X``/``eval_Y``.

Input scale: features are standardized (zero mean, unit variance per feature, statistics of
the training split; constant features become 0) and, with ``unit_norm=True`` (default),
divided by ``sqrt(d)`` so that ``E‖ξ‖² ≈ 1``, i.e. ``K^0 = ξξᵀ = Θ(1)`` with the N(0, 1) input
layer of the paper (``theory/tp6-notes.md`` §3.6).  Classification targets are one-hot.

No loader touches the network: digits ships with scikit-learn, CIFAR-10 is read from a local
directory in the standard "python version" pickle format (``data_batch_1`` … ``data_batch_5``,
``test_batch``; each a dict with ``b"data"`` (N, 3072) uint8 and ``b"labels"``).  The pickles
are read with an unpickler that only admits numpy arrays, so a foreign pickle cannot run code.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray

from limitsim.validation import check_depth, check_loss

__all__ = ["LOADERS", "TaskFields", "cifar10", "digits", "few_point", "load_fields", "teacher"]

#: Keyword arguments of :class:`limitsim.Task`.
TaskFields = dict[str, Any]

CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"


def digits(
    *,
    steps: int = 500,
    batch_size: int = 64,
    seed: int = 0,
    loss: str = "xent",
    eval_fraction: float = 0.2,
    unit_norm: bool = True,
) -> TaskFields:
    """scikit-learn's 8×8 handwritten digits (1797 images, d = 64, 10 classes, one-hot).

    Parameters
    ----------
    steps, batch_size : int
        Number of steps T and batch size B.
    seed : int
        Seed of the train/eval split and of the batch order.
    loss : {"xent", "mse"}
    eval_fraction : float
        Fraction of images held out as ``eval_X``/``eval_Y`` (0 for none).
    unit_norm : bool
        Divide the standardized inputs by ``sqrt(d)`` (module docstring).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _classification_task(
        np.asarray(bunch.data, dtype=np.float64),
        np.asarray(bunch.target),
        10,
        name="digits",
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        loss=loss,
        eval_fraction=eval_fraction,
        unit_norm=unit_norm,
    )


def teacher(
    *,
    steps: int = 500,
    batch_size: int = 64,
    seed: int = 0,
    d_in: int = 16,
    d_out: int = 1,
    teacher_width: int = 64,
    phi: str = "tanh",
    n_train: int | None = None,
    n_eval: int = 256,
    loss: str = "mse",
) -> TaskFields:
    """Regression on a random two-layer teacher ``y = Aᵀ φ(B ξ √d) / sqrt(k)``.

    Inputs ξ ~ N(0, I/d) (so ``‖ξ‖² ≈ 1``), ``B`` (k, d) and ``A`` (k, e) have N(0, 1) entries,
    ``k = teacher_width``; targets are Θ(1).  With ``n_train=None`` every batch is fresh
    (online learning); otherwise batches are drawn from a fixed training set of that size.
    The targets are real-valued: ``loss="xent"`` is refused.
    """
    from limitsim.nonlinearities.registry import nonlinearity

    for name, value in (("d_in", d_in), ("d_out", d_out), ("teacher_width", teacher_width)):
        check_depth(value, name)
    steps, batch_size = check_depth(steps, "steps"), check_depth(batch_size, "batch_size")
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((teacher_width, d_in))
    A = rng.standard_normal((teacher_width, d_out))
    act = nonlinearity(phi)

    def label(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(act(x @ B.T * math.sqrt(d_in)) @ A / math.sqrt(teacher_width))

    def sample(count: int) -> NDArray[np.float64]:
        return rng.standard_normal((count, d_in)) / math.sqrt(d_in)

    eval_X = sample(n_eval) if n_eval else None
    if n_train is None:
        X = sample(steps * batch_size).reshape(steps, batch_size, d_in)
    else:
        pool = sample(check_depth(n_train, "n_train"))
        X = pool[_batch_indices(pool.shape[0], steps, batch_size, rng)]
    return dict(
        X=X,
        Y=label(X),
        loss=_regression_loss(loss, "teacher"),
        eval_X=eval_X,
        eval_Y=None if eval_X is None else label(eval_X),
        name=f"teacher(d={d_in}, e={d_out}, k={teacher_width}, {act.name})",
    )


def few_point(
    *,
    steps: int = 100,
    n_points: int = 4,
    d_in: int = 8,
    d_out: int = 1,
    seed: int = 0,
    loss: str = "mse",
) -> TaskFields:
    """Full-batch regression of ``n_points`` random unit-norm inputs onto N(0, 1) targets.

    The same batch is used at every step (as in ``Task.full_batch``), the setting of the paper's
    one-step scaling arguments (Sec. 3, App. D); ``eval_X`` is the batch itself.  The targets
    are real-valued: ``loss="xent"`` is refused.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((check_depth(n_points, "n_points"), check_depth(d_in, "d_in")))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = rng.standard_normal((n_points, check_depth(d_out, "d_out")))
    steps = check_depth(steps, "steps")
    return dict(
        X=np.broadcast_to(X, (steps, *X.shape)),
        Y=np.broadcast_to(Y, (steps, *Y.shape)),
        loss=_regression_loss(loss, "few_point"),
        eval_X=X,
        eval_Y=Y,
        name=f"few_point({n_points})",
    )


def cifar10(
    path: str | Path,
    *,
    steps: int = 500,
    batch_size: int = 64,
    seed: int = 0,
    loss: str = "xent",
    n_train: int | None = None,
    n_eval: int | None = 1000,
    unit_norm: bool = True,
) -> TaskFields:
    """CIFAR-10 from a local directory of python-pickle batches (flattened, d = 3072).

    Parameters
    ----------
    path : str or Path
        Directory holding ``data_batch_1`` … ``data_batch_5`` and ``test_batch``.
    n_train : int, optional
        Use the first ``n_train`` training images (default all).
    n_eval : int or None
        Number of test images used as ``eval_X`` (None or 0: none; the test file is then not
        read).

    Raises
    ------
    FileNotFoundError
        Naming the missing directory or file.
    ValueError
        Naming a file that is not a valid CIFAR-10 batch.

    Notes
    -----
    ``Task`` stores every step's batch, i.e. ``T B d`` float64 values (≈ 1.6 GB for 1000 steps
    of batch 64): long CIFAR runs should be split into several tasks.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 directory not found: path={str(root)!r}")
    parts = [_read_cifar_batch(root / name) for name in CIFAR_TRAIN_FILES]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if n_train is not None:
        count = check_depth(n_train, "n_train")
        data, labels = data[:count], labels[:count]
    eval_data = eval_labels = None
    if n_eval:
        eval_data, eval_labels = _read_cifar_batch(root / CIFAR_TEST_FILE)
        count = check_depth(n_eval, "n_eval")
        eval_data, eval_labels = eval_data[:count], eval_labels[:count]
    return _classification_task(
        data.astype(np.float64),
        labels,
        10,
        name="cifar10",
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        loss=loss,
        eval_fraction=0.0,
        unit_norm=unit_norm,
        eval_set=None
        if eval_data is None
        else (eval_data.astype(np.float64), cast(NDArray[np.int64], eval_labels)),
    )


#: Loader of each dataset name accepted by :func:`load_fields` / ``Task.from_dataset``.
LOADERS: dict[str, Callable[..., TaskFields]] = {
    "digits": digits,
    "teacher": teacher,
    "few_point": few_point,
    "cifar10": cifar10,
}


def load_fields(name: str, **kwargs: Any) -> TaskFields:
    """The Task fields of dataset ``name`` (one of :data:`LOADERS`), loader options as keywords.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names).
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {sorted(LOADERS)}")
    return LOADERS[name](**kwargs)


# ----------------------------------------------------------------------- helpers
def _regression_loss(loss: str, task: str) -> Literal["mse", "xent"]:
    """``loss`` of a task with real-valued targets: cross-entropy is refused."""
    if loss == "xent":
        raise ValueError(
            f"the {task} task has real-valued regression targets; loss='xent' needs class "
            "targets (one-hot or probabilities): use loss='mse' or a classification dataset "
            "(digits, cifar10)"
        )
    return check_loss(loss)


def _batch_indices(
    count: int, steps: int, batch_size: int, rng: np.random.Generator
) -> NDArray[np.intp]:
    """Indices (T, B): consecutive slices of concatenated per-epoch permutations."""
    epochs = -(-steps * batch_size // count)
    order = np.concatenate([rng.permutation(count) for _ in range(epochs)])
    return order[: steps * batch_size].reshape(steps, batch_size)


def _classification_task(
    data: NDArray[np.float64],
    labels: NDArray[Any],
    classes: int,
    *,
    name: str,
    steps: int,
    batch_size: int,
    seed: int,
    loss: str,
    eval_fraction: float,
    unit_norm: bool,
    eval_set: tuple[NDArray[np.float64], NDArray[Any]] | None = None,
) -> TaskFields:
    steps, batch_size = check_depth(steps, "steps"), check_depth(batch_size, "batch_size")
    loss = check_loss(loss)
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must lie in [0, 1), got {eval_fraction}")
    rng = np.random.default_rng(seed)
    if eval_set is None and eval_fraction > 0:
        order = rng.permutation(data.shape[0])
        cut = round(data.shape[0] * (1.0 - eval_fraction))
        eval_set = (data[order[cut:]], labels[order[cut:]])
        data, labels = data[order[:cut]], labels[order[:cut]]
    mean, std = data.mean(axis=0), data.std(axis=0)
    scale = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0)
    if unit_norm:
        scale /= math.sqrt(data.shape[1])

    def prepare(x: NDArray[np.float64]) -> NDArray[np.float64]:
        prepared: NDArray[np.float64] = (x - mean) * scale
        return prepared

    onehot = np.eye(classes)
    index = _batch_indices(data.shape[0], steps, batch_size, rng)
    inputs = prepare(data)
    return dict(
        X=inputs[index],
        Y=onehot[labels[index]],
        loss=loss,
        eval_X=None if eval_set is None else prepare(eval_set[0]),
        eval_Y=None if eval_set is None else onehot[eval_set[1]],
        name=name,
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that admits only numpy arrays/dtypes (CIFAR batches need nothing else).

    ``_codecs.encode`` is admitted too: protocol-2 pickles written by Python 3 rebuild bytes
    with it; it only encodes a string.
    """

    ALLOWED: frozenset[tuple[str, str]] = frozenset(
        [
            *(
                (module, name)
                for module in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy")
                for name in ("_reconstruct", "scalar", "ndarray", "dtype")
            ),
            ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
        ]
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            if module.startswith("numpy.core") and hasattr(np, "_core"):
                module = module.replace("numpy.core", "numpy._core", 1)  # numpy 2: no warning
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def _read_cifar_batch(path: Path) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """``(data (N, 3072) uint8, labels (N,))`` of one CIFAR-10 pickle batch."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch file not found: {str(path)!r}")
    try:
        raw = path.read_bytes()
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        IndexError,
        AttributeError,
    ) as exc:
        raise ValueError(
            f"corrupt or unsupported CIFAR-10 batch file {str(path)!r}: {exc!r}"
        ) from None
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise ValueError(
            f"corrupt CIFAR-10 batch file {str(path)!r}: expected data (N, 3072) and N labels, "
            f"got data {data.shape} and labels {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"corrupt CIFAR-10 batch file {str(path)!r}: labels outside 0..9")
    return data.astype(np.uint8, copy=False), labels
