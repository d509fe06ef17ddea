"""Datasets (limitsim.data): digits, synthetic tasks, local CIFAR-10 pickles, bad input."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from limitsim import Task
from limitsim.data import DATASETS, load_dataset


def test_digits_standardized_one_hot():
    task = Task.from_dataset("digits", steps=30, batch_size=16, seed=2)
    assert task.X.shape == (30, 16, 64) and task.Y.shape == (30, 16, 10)
    assert task.loss == "xent" and task.name == "digits"
    np.testing.assert_array_equal(task.Y.sum(axis=-1), 1.0)
    assert set(np.unique(task.Y)) == {0.0, 1.0}
    assert task.eval_X.shape == (359, 64) and task.eval_Y.shape == (359, 10)
    # standardized then divided by sqrt(d): E‖ξ‖² = (non-constant features)/d ≤ 1
    norms = (task.X**2).sum(axis=-1).mean()
    assert 0.8 < norms <= 1.0 + 5 * (task.X**2).sum(axis=-1).std() / math.sqrt(480)
    raw = Task.from_dataset("digits", steps=2, batch_size=8, unit_norm=False, loss="mse")
    assert raw.loss == "mse" and (raw.X**2).sum(axis=-1).mean() > 30
    again = Task.from_dataset("digits", steps=30, batch_size=16, seed=2)
    np.testing.assert_array_equal(again.X, task.X)


def test_digits_epochs_visit_every_training_image():
    task = Task.from_dataset("digits", steps=90, batch_size=16, eval_fraction=0.5)
    n_train = 1797 - task.eval_X.shape[0]
    first_epoch = task.X.reshape(-1, 64)[:n_train]
    assert (
        np.unique(first_epoch, axis=0).shape[0]
        == np.unique(task.X.reshape(-1, 64), axis=0).shape[0]
    )


def test_teacher_and_few_point():
    online = Task.from_dataset("teacher", steps=5, batch_size=7, d_in=4, d_out=2, seed=1)
    assert online.X.shape == (5, 7, 4) and online.Y.shape == (5, 7, 2)
    assert np.unique(online.X.reshape(-1, 4), axis=0).shape[0] == 35  # fresh every step
    assert online.eval_X.shape == (256, 4)
    fixed = Task.from_dataset("teacher", steps=5, batch_size=7, d_in=4, n_train=10, seed=1)
    assert np.unique(fixed.X.reshape(-1, 4), axis=0).shape[0] <= 10
    # a deterministic teacher: equal inputs get equal targets, and the targets are Θ(1)
    xs, ys = fixed.X.reshape(-1, 4), fixed.Y.reshape(-1, 1)
    for row in np.unique(xs, axis=0):
        assert np.ptp(ys[(xs == row).all(axis=1)]) < 1e-12
    assert 0.2 < online.Y.std() < 5
    few = Task.from_dataset("few_point", steps=3, n_points=4, d_in=5)
    np.testing.assert_allclose(np.linalg.norm(few.X[0], axis=1), 1.0)
    np.testing.assert_array_equal(few.X[0], few.X[2])
    np.testing.assert_array_equal(few.eval_X, few.X[0])


# ------------------------------------------------------------------ CIFAR-10
def write_cifar(tmp_path, per_file=6, rng=None, protocol=2):
    rng = rng or np.random.default_rng(0)
    files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in files:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, per_file)],
            b"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
            b"filenames": [b"x.png"] * per_file,
        }
        with open(tmp_path / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=protocol)
    return files


def test_cifar10_from_local_pickles(tmp_path):
    write_cifar(tmp_path)
    task = Task.from_dataset("cifar10", path=tmp_path, steps=4, batch_size=5, n_eval=3)
    assert task.X.shape == (4, 5, 3072) and task.Y.shape == (4, 5, 10)
    assert task.eval_X.shape == (3, 3072) and task.loss == "xent"
    np.testing.assert_array_equal(task.Y.sum(axis=-1), 1.0)
    labels = []
    for i in range(1, 6):
        with open(tmp_path / f"data_batch_{i}", "rb") as handle:
            labels += pickle.load(handle, encoding="bytes")[b"labels"]
    # 20 draws without replacement from the 30 training images keep their labels
    drawn = np.bincount(task.Y.reshape(-1, 10).argmax(-1), minlength=10)
    assert np.all(drawn <= np.bincount(labels, minlength=10)) and drawn.sum() == 20
    small = Task.from_dataset(
        "cifar10", path=str(tmp_path), steps=2, batch_size=3, n_train=4, n_eval=None
    )
    assert small.eval_X is None and np.unique(small.X.reshape(-1, 3072), axis=0).shape[0] <= 4


def test_cifar10_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path="):
        Task.from_dataset("cifar10", path=tmp_path / "nowhere")
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        Task.from_dataset("cifar10", path=tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match=r"corrupt.*data_batch_3"):
        Task.from_dataset("cifar10", path=tmp_path)
    with open(tmp_path / "data_batch_3", "wb") as handle:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, handle)
    with pytest.raises(ValueError, match=r"corrupt.*data_batch_3.*3072"):
        Task.from_dataset("cifar10", path=tmp_path)
    with open(tmp_path / "data_batch_3", "wb") as handle:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, handle)
    with pytest.raises(ValueError, match="labels outside"):
        Task.from_dataset("cifar10", path=tmp_path)


def test_cifar10_refuses_code_in_pickles(tmp_path):
    write_cifar(tmp_path)

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "data_batch_2", "wb") as handle:
        pickle.dump({b"data": Exploit(), b"labels": []}, handle)
    with pytest.raises(ValueError, match=r"forbidden global builtins\.print"):
        Task.from_dataset("cifar10", path=tmp_path)


def test_unknown_dataset_and_bad_options():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*cifar10"):
        Task.from_dataset("mnist")
    assert set(DATASETS) == {"digits", "teacher", "few_point", "cifar10"}
    with pytest.raises(ValueError, match="loss"):
        load_dataset("digits", loss="hinge")
    with pytest.raises(ValueError, match="batch_size"):
        load_dataset("digits", batch_size=0)
    with pytest.raises(ValueError, match="eval_fraction"):
        load_dataset("digits", eval_fraction=1.5)
    with pytest.raises(TypeError):
        load_dataset("few_point", colour="red")


def test_task_shape_errors_name_the_arrays():
    with pytest.raises(ValueError, match="X and Y"):
        Task.from_batches(np.zeros((2, 3, 4)), np.zeros((2, 4, 1)))
    with pytest.raises(ValueError, match="loss"):
        Task.from_batches(np.zeros((2, 3, 4)), np.zeros((2, 3, 1)), loss="hinge")


def test_cross_entropy_targets_must_be_probabilities(rng):
    X = rng.standard_normal((2, 3, 4))
    labels = rng.integers(0, 3, (2, 3))
    with pytest.raises(ValueError, match=r"one-hot encode integer class labels.*np\.eye"):
        Task.from_batches(X, labels[..., None], loss="xent")
    with pytest.raises(ValueError, match=r"one-hot encode"):
        Task.full_batch(X[0], labels[0], 5, loss="xent")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*\[-1, 2\]"):
        Task.from_batches(X, np.full((2, 3, 2), [2.0, -1.0]), loss="xent")
    with pytest.raises(ValueError, match=r"summing to 1.*row \(0, 0\) sums to 1\.1"):
        Task.from_batches(X, np.full((2, 3, 2), [0.5, 0.6]), loss="xent")
    one_hot = np.eye(3)[labels]
    with pytest.raises(ValueError, match="targets eval_Y"):
        Task.from_batches(X, one_hot, loss="xent", eval_X=X[0], eval_Y=2 * one_hot[0])
    # mse keeps any real targets
    assert Task.from_batches(X, 2 * one_hot - 7, loss="mse").loss == "mse"
    # one-hot and soft labels rounded to float32 pass; their cross-entropy is >= 0
    soft = rng.random((2, 3, 7)).astype(np.float32)
    soft /= soft.sum(axis=-1, keepdims=True)
    for Y in (one_hot, soft):
        task = Task.from_batches(X, Y, loss="xent")
        f = rng.standard_normal((5, *Y.shape[1:]))
        assert np.all(task.value(f, task.Y[0]) >= 0)


@pytest.mark.parametrize("name", ["teacher", "few_point"])
def test_regression_tasks_refuse_cross_entropy(name):
    with pytest.raises(ValueError, match=f"the {name} task has real-valued regression targets"):
        load_dataset(name, loss="xent")
