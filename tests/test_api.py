"""The public API: its list of names (any change shows up as a diff here) and the README example."""

import limitsim


def test_public_names():
    assert sorted(limitsim.__all__) == sorted(
        [
            "Architecture",
            "Classification",
            "Grid",
            "Nonlinearity",
            "Parametrization",
            "Record",
            "Recorded",
            "Run",
            "Task",
            "__version__",
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
    )
    for name in limitsim.__all__:
        assert getattr(limitsim, name) is not None


def test_public_functions_survive_submodule_imports():
    """Names shared with a submodule stay the functions after the submodule is imported."""
    import importlib

    for name in limitsim.__all__:
        if name != "__version__" and importlib.util.find_spec(f"limitsim.{name}") is not None:
            importlib.import_module(f"limitsim.{name}")
            assert callable(getattr(limitsim, name)), name
    assert limitsim.nonlinearities()[0] == "linear"


def test_readme_python_example_runs():
    """The README's Python example is code users copy: it must run as printed."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert not namespace["exact"].diverged
    assert len(namespace["runs"]) == 2
