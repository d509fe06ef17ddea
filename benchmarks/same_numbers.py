"""Fingerprints of every route's results on fixed seeds, to show a refactor changes no number.

Run it on two commits and compare the outputs (they must be identical, bit for bit)::

    git worktree add /tmp/before REV
    (cd /tmp/before && PYTHONPATH=. python benchmarks/same_numbers.py) > before.txt
    PYTHONPATH=. python benchmarks/same_numbers.py > after.txt && diff before.txt after.txt

Each line is ``name sha256`` of the raw bytes of one result array (float64), so any change
in any bit of any entry shows.  It uses only the keyword API that every commit since
session 3 has, and runs in about a minute.
"""

from __future__ import annotations

import hashlib

import numpy as np

import limitsim
from limitsim.run import Record, Run


def _digest(array: object) -> str:
    data = np.ascontiguousarray(np.asarray(array, dtype=np.float64))
    return hashlib.sha256(data.tobytes()).hexdigest()[:32]


def _print_run(name: str, run: Run) -> None:
    print(f"{name}.f {_digest(run.f)}")
    print(f"{name}.loss {_digest(run.loss)}")
    for field in ("f_se", "loss_se", "f_eval"):
        value = getattr(run, field)
        if value is not None:
            print(f"{name}.{field} {_digest(value)}")
    rec = run.recorded
    if rec is not None:
        for key in ("x_layers", "x_steps", "h_steps", "dh_layers"):
            value = getattr(rec, key)
            if value is not None:
                print(f"{name}.{key} {_digest(value)}")


def main() -> None:
    task = limitsim.Task.from_dataset("digits", batch_size=16, steps=6, seed=3, eval_fraction=0.02)
    small = limitsim.Task.from_dataset("digits", batch_size=4, steps=6, seed=3, eval_fraction=0)
    record = Record(steps=(0, 3, 6))
    param = limitsim.Parametrization.preset("depth_mup", eta=0.05)
    adam = limitsim.Parametrization.preset("depth_mup", eta=0.01, optimizer="adam")
    for name, p in (("sgd", param), ("adam", adam)):
        for block, block_depth, pre_ln, phi in (
            ("post", 1, False, "relu"),
            ("pre", 1, False, "tanh"),
            ("post", 2, True, "abs"),
        ):
            run = limitsim.train_finite(
                task, p, depth=8, width=32, phi=phi, seed=5, block=block,
                block_depth=block_depth, pre_ln=pre_ln, dtype="float64", record=record,
            )  # fmt: skip
            _print_run(f"finite.{name}.{block}{block_depth}.{pre_ln}.{phi}", run)
        runs = limitsim.train_finite_batch(
            task, p, depth=8, width=32, seeds=[1, 2, 3], dtype="float64"
        )
        for k, run in enumerate(runs):
            _print_run(f"finite_batch.{name}.{k}", run)
        for block, block_depth, phi in (
            ("post", 1, "relu"),
            ("pre", 1, "tanh"),
            ("post", 2, "abs"),
        ):
            run = limitsim.simulate_limit(
                small, p, depth=8, phi=phi, n_particles=1024, seed=7, block=block,
                block_depth=block_depth, record=record, progress=False,
            )  # fmt: skip
            _print_run(f"particles.{name}.{block}{block_depth}.{phi}", run)
    mse = limitsim.Task.from_dataset(
        "digits", batch_size=16, steps=6, seed=3, eval_fraction=0.02, loss="mse"
    )
    for depth in (4, 16):
        _print_run(f"linear.{depth}", limitsim.linear_limit(mse, param, depth=depth, record=record))
    _print_run("linear_depth", limitsim.linear_depth_limit(mse, param, grid=(8, 16, 32)))
    _print_run(
        "depth_limit",
        limitsim.depth_limit(small, param, depths=(4, 8, 16), n_particles=1024, progress=False),
    )
    X = task.X[0, :4]
    for phi in ("relu", "abs", "tanh", "gelu"):
        for block, block_depth in (("post", 1), ("pre", 1), ("post", 2)):
            k = limitsim.init_kernels(X, phi, depth=16, param=param, block=block,
                                      block_depth=block_depth)  # fmt: skip
            for key, value in vars(k).items():
                if isinstance(value, np.ndarray):
                    print(f"kernels.{phi}.{block}{block_depth}.{key} {_digest(value)}")


if __name__ == "__main__":
    main()
