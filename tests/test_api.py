"""The public API: its names (any change shows up as a diff here), each the object of the module
it is documented in, the top-level functions on tiny cases against closed forms, and the
README example."""

import importlib
import tomllib
from pathlib import Path

import numpy as np
import pytest
import sweep_funcs

import limitsim

#: Public name -> the module that defines it (``from limitsim.kernels.recursion import ...``).
PUBLIC = {
    "Architecture": "limitsim.architecture",
    "Classification": "limitsim.classification",
    "classify": "limitsim.classification",
    "depth_limit": "limitsim.particles.depth",
    "train_finite": "limitsim.finite.train",
    "train_finite_batch": "limitsim.finite.train",
    "depth_limit_kernels": "limitsim.kernels.limit",
    "init_kernels": "limitsim.kernels.recursion",
    "linear_depth_limit": "limitsim.linear.depth",
    "linear_limit": "limitsim.linear.limit",
    "Nonlinearity": "limitsim.nonlinearities.registry",
    "nonlinearities": "limitsim.nonlinearities.registry",
    "nonlinearity": "limitsim.nonlinearities.registry",
    "Parametrization": "limitsim.parametrization",
    "simulate_limit": "limitsim.particles.simulate",
    "Record": "limitsim.run",
    "Recorded": "limitsim.run",
    "Run": "limitsim.run",
    "open_store": "limitsim.sweeps.store",
    "Grid": "limitsim.sweeps.sweep",
    "point_seed": "limitsim.sweeps.sweep",
    "register_point_function": "limitsim.sweeps.sweep",
    "run_sweep": "limitsim.sweeps.sweep",
    "Task": "limitsim.task",
}


def test_public_names():
    assert sorted(limitsim.__all__) == sorted([*PUBLIC, "__version__"])
    assert sorted(PUBLIC) == [
        "Architecture",
        "Classification",
        "Grid",
        "Nonlinearity",
        "Parametrization",
        "Record",
        "Recorded",
        "Run",
        "Task",
        "classify",
        "depth_limit",
        "depth_limit_kernels",
        "init_kernels",
        "linear_depth_limit",
        "linear_limit",
        "nonlinearities",
        "nonlinearity",
        "open_store",
        "point_seed",
        "register_point_function",
        "run_sweep",
        "simulate_limit",
        "train_finite",
        "train_finite_batch",
    ]


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_public_name_is_the_object_of_its_module(name):
    obj = getattr(limitsim, name)
    assert obj is getattr(importlib.import_module(PUBLIC[name]), name)
    assert callable(obj)  # every public name but __version__ is a class or a function


def test_version_is_the_projects():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert limitsim.__version__ == pyproject["project"]["version"]


def test_public_functions_survive_submodule_imports():
    """Names shared with a submodule stay the functions after the submodule is imported."""
    for name in limitsim.__all__:
        if name != "__version__" and importlib.util.find_spec(f"limitsim.{name}") is not None:
            importlib.import_module(f"limitsim.{name}")
            assert getattr(limitsim, name) is getattr(importlib.import_module(PUBLIC[name]), name)
    assert limitsim.nonlinearities()[0] == "linear"


# --------------------------------------------------------------- top-level functions, tiny cases
# Linear φ has Σ_φ(K) = Cov(z) = K and V_φ'(K) = 11ᵀ (theory/algorithms.md §2, R1), so at
# α = 1/2 the kernel recursion is K^l = (1 + a²/L)^l K^0, G^l = (1 + a²/L)^(L−l) 11ᵀ, and its
# L → ∞ limit K(λ) = e^{a²λ} K^0, G(λ) = e^{a²(1−λ)} 11ᵀ (validation ladder item 2).
A = 1.3
X = np.array([[1.0, 0.0, 0.2], [0.6, 0.8, -0.1]])
K0 = X @ X.T


def test_init_kernels_of_linear_phi():
    L = 5
    K, G = limitsim.init_kernels(
        X, "linear", depth=L, param=limitsim.Parametrization.depth_mup(a=A)
    )
    growth = (1 + A**2 / L) ** np.arange(L + 1)
    np.testing.assert_allclose(K, growth[:, None, None] * K0, rtol=1e-14)
    np.testing.assert_allclose(G, growth[::-1, None, None] * np.ones((2, 2)), rtol=1e-14)


def test_depth_limit_kernels_of_linear_phi():
    lam = np.array([0.0, 0.3, 1.0])
    limit = limitsim.depth_limit_kernels(X, "linear", a=A, lambdas=lam)
    np.testing.assert_allclose(limit.K, np.exp(A**2 * lam)[:, None, None] * K0, rtol=1e-10)
    np.testing.assert_allclose(
        limit.G, np.exp(A**2 * (1 - lam))[:, None, None] * np.ones((2, 2)), rtol=1e-10
    )


def one_block_task():
    """Two full-batch steps on three inputs, two outputs, and f_1 of the depth-1 linear net.

    At n = ∞, f_0 = Vᵀx^0 = 0 and one SGD step on W changes f by −η a² Σ_b χ_b K^0_{·b}/B
    with χ_b = f_0 − y_b = −y_b (squared loss ½‖f − y‖², theory/algorithms.md §1; with L = 1
    the factors L^-α, L^-γ are 1, and a linear net has no higher-order term in η).
    """
    rng = np.random.default_rng(1)
    X3, Y = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    param = limitsim.Parametrization.depth_mup(a=A, eta=0.7)
    f1 = param.eta * A**2 * (X3 @ X3.T) @ Y / 3
    return limitsim.Task.full_batch(X3, Y, 2), param, np.stack([np.zeros_like(f1), f1])


def test_linear_limit_one_step_closed_form():
    task, param, exact = one_block_task()
    run = limitsim.linear_limit(task, param, depth=1)
    assert run.route == "linear_limit" and not run.diverged
    np.testing.assert_allclose(run.f, exact, rtol=0, atol=1e-14)
    np.testing.assert_allclose(run.loss, task.value(exact, task.Y), rtol=1e-14)


def test_simulate_limit_one_step_closed_form():
    """Within 4 Monte Carlo standard errors per entry (a false alarm has probability ≈ 6e-5
    per entry for Gaussian errors; 12 entries)."""
    task, param, exact = one_block_task()
    run = limitsim.simulate_limit(
        task, param, depth=1, phi="linear", n_particles=4096, seed=0, progress=False
    )
    assert run.route == "particles" and np.all(run.f_se[1] > 0)
    assert np.all(np.abs(run.f - exact) <= 4 * run.f_se + 1e-12), (run.f - exact) / run.f_se


def test_classify_depth_mup():
    """Depth-µP is stable, nontrivial, faithful, learns features, κ = 1/2 (Claims 7.2–7.6)."""
    c = limitsim.classify(0.5, 0.5)
    assert (c.stable_init, c.stable_training, c.nontrivial, c.faithful) == (True,) * 4
    assert c.feature_learning and not c.redundant and c.diversity_exponent == 0.5
    assert (
        limitsim.Parametrization.depth_mup().alpha
        == limitsim.Parametrization.depth_mup().gamma
        == 0.5
    )


def test_nonlinearity_values():
    t = np.array([-1.5, 0.0, 2.0])
    relu = limitsim.nonlinearity("relu")
    assert isinstance(relu, limitsim.Nonlinearity)
    np.testing.assert_array_equal(relu(t), [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(limitsim.nonlinearity("linear")(t), t)
    assert {"linear", "relu", "abs", "tanh"} <= set(limitsim.nonlinearities())


def test_run_sweep_and_open_store(tmp_path, registry):
    """``sweep_funcs.noisy`` returns y = 2x: the sweep's dataset holds it, the store reads back."""
    assert limitsim.register_point_function("noisy", sweep_funcs.noisy) is sweep_funcs.noisy
    grid = limitsim.Grid(axes={"x": [0, 1, 2]})
    ds = limitsim.run_sweep("noisy", grid, store=tmp_path / "s", executor="inline")
    np.testing.assert_array_equal(ds.y.values, [0.0, 2.0, 4.0])
    with limitsim.open_store(tmp_path / "s", readonly=True) as store:
        np.testing.assert_array_equal(store.to_dataset().y.values, [0.0, 2.0, 4.0])
    assert limitsim.point_seed({"x": 1, "k": 2}) == limitsim.point_seed({"k": 2, "x": 1})


def test_readme_python_example_runs():
    """The README's Python example is code users copy: it must run as printed."""
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert not namespace["exact"].diverged
    assert len(namespace["runs"]) == 2


@pytest.mark.parametrize("former", sorted(limitsim.FORMER_MODULES))
def test_former_module_paths_import_the_moved_modules(former):
    """``import limitsim.sweep_spec`` (limitsim 0.1's flat layout) gives the moved module
    itself, which keeps its own name and spec; the top-level functions stay functions."""
    current = importlib.import_module(limitsim.FORMER_MODULES[former])
    assert importlib.import_module(former) is current
    assert current.__spec__.name == current.__name__ == limitsim.FORMER_MODULES[former]
    assert callable(limitsim.linear_limit) and callable(limitsim.nonlinearities)


def test_moved_point_function_keeps_its_stored_name():
    """Point keys and store.json name ``limitsim.sweep_spec:demo_point``, as before the move."""
    from limitsim.sweeps import demo_point, function_name, get_point_function

    assert function_name(demo_point) == "limitsim.sweep_spec:demo_point"
    assert get_point_function("limitsim.sweep_spec:demo_point") is demo_point
    assert get_point_function("limitsim.sweeps.spec:demo_point") is demo_point  # current path
