"""Architecture (one validated value for φ, block, block depth, pre-LN), the shared validation
module, and the typed fields of Run: messages, arch= against the loose keywords, conflicts."""

import dataclasses

import numpy as np
import pytest

import limitsim
from limitsim import Architecture, Parametrization, Record, Task
from limitsim.architecture import BLOCKS, resolve
from limitsim.finite._net import Hyper, Layer
from limitsim.validation import bounded, check_integer, check_positive_real, diverged

MUP = Parametrization.depth_mup(eta=0.5)


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 2, 4)) / 2
    return Task.from_batches(X, rng.standard_normal((3, 2, 1)), eval_X=X[0])


# ------------------------------------------------------------------------ the value
def test_architecture_normalises_and_prints():
    arch = Architecture("tanh", block="pre", pre_ln=np.bool_(True))
    assert arch.phi is limitsim.nonlinearity("tanh")
    assert (arch.block, arch.block_depth, arch.pre_ln) == ("pre", 1, True)
    assert type(arch.pre_ln) is bool
    assert repr(arch) == "Architecture(phi='tanh', block='pre', block_depth=1, pre_ln=True)"
    assert arch == Architecture("tanh", block="pre", pre_ln=True)
    assert len({arch, Architecture("tanh", block="pre", pre_ln=True)}) == 1
    assert Architecture() == Architecture("relu", block="post", block_depth=1, pre_ln=False)
    assert BLOCKS == ("post", "pre")
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.block = "post"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(block="sideways"), ValueError, r"block must be one of \('post', 'pre'\), got 'side"),
        (dict(block_depth=3), ValueError, "block_depth must be 1 or 2, got 3"),
        (dict(block_depth=0), ValueError, "block_depth must be 1 or 2, got 0"),
        (dict(block_depth=True), ValueError, "block_depth must be 1 or 2, got True"),
        (dict(block_depth=1.5), ValueError, "block_depth must be 1 or 2, got 1.5"),
        (dict(pre_ln="yes"), TypeError, "pre_ln must be a bool, got str"),
        (dict(phi=3), TypeError, "phi must be a str or Nonlinearity"),
        (dict(phi="no_such_phi"), ValueError, "no_such_phi"),
    ],
)
def test_architecture_refuses_bad_fields(kwargs, error, match):
    with pytest.raises(error, match=match):
        Architecture(**kwargs)


def test_resolve_builds_once_and_refuses_conflicts():
    assert resolve(None) == Architecture()
    assert resolve(None, phi="abs", block_depth=2) == Architecture("abs", block_depth=2)
    arch = Architecture("tanh", block="pre")
    assert resolve(arch, phi=None, block=None) is arch
    assert resolve(arch, phi="tanh", block="pre") is arch  # agreeing keywords are fine
    with pytest.raises(ValueError, match=r"arch=Architecture\(phi='tanh'.*and phi='relu' conf"):
        resolve(arch, phi="relu")
    with pytest.raises(ValueError, match="and block_depth=2 conflict"):
        resolve(arch, block_depth=2)
    with pytest.raises(TypeError, match=r"arch must be a limitsim\.Architecture"):
        resolve("tanh")  # type: ignore[arg-type]


# --------------------------------------------------------------- arch= in every route
def _same_run(a, b):
    for name in ("f", "loss", "f_se", "loss_se", "f_eval", "f_eval_se"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=name)
    np.testing.assert_equal(a.config, b.config)


def test_arch_equals_loose_keywords_finite(task):
    arch = Architecture("tanh", block_depth=2, pre_ln=True)
    loose = dict(phi="tanh", block_depth=2, pre_ln=True)
    a = limitsim.train_finite(task, MUP, depth=3, width=8, arch=arch, record=Record(steps=(0,)))
    b = limitsim.train_finite(task, MUP, depth=3, width=8, record=Record(steps=(0,)), **loose)
    _same_run(a, b)
    np.testing.assert_array_equal(a.recorded.x_layers, b.recorded.x_layers)
    (c,) = limitsim.train_finite_batch(task, MUP, depth=3, width=8, arch=arch)
    np.testing.assert_array_equal(a.f, c.f)
    with pytest.raises(ValueError, match="and phi='relu' conflict"):
        limitsim.train_finite(task, MUP, depth=3, width=8, arch=arch, phi="relu")
    with pytest.raises(ValueError, match="and pre_ln=False conflict"):
        limitsim.train_finite_batch(task, MUP, depth=3, width=8, arch=arch, pre_ln=False)


def test_arch_equals_loose_keywords_kernels():
    X = np.array([[1.0, 0.0], [0.6, 0.8]])
    arch = Architecture("abs", block_depth=2)
    a = limitsim.init_kernels(X, depth=4, param=MUP, arch=arch)
    b = limitsim.init_kernels(X, "abs", depth=4, param=MUP, block_depth=2)
    np.testing.assert_array_equal(a.K, b.K)
    np.testing.assert_array_equal(a.G, b.G)
    with pytest.raises(ValueError, match="and block='pre' conflict"):
        limitsim.init_kernels(X, depth=4, param=MUP, arch=arch, block="pre")
    with pytest.raises(ValueError, match="block='pre' supports block_depth=1 only"):
        limitsim.init_kernels(X, depth=4, param=MUP, arch=Architecture(block="pre", block_depth=2))


def test_arch_equals_loose_keywords_particles(task):
    arch = Architecture("tanh", block="pre")
    opts = dict(depth=2, n_particles=2 * 8 * 4 * 8, progress=False)
    a = limitsim.simulate_limit(task, MUP, arch=arch, **opts)
    b = limitsim.simulate_limit(task, MUP, phi="tanh", block="pre", **opts)
    _same_run(a, b)
    with pytest.raises(ValueError, match="and phi='relu' conflict"):
        limitsim.simulate_limit(task, MUP, arch=arch, phi="relu", **opts)
    with pytest.raises(ValueError, match="unsupported combination: block='pre'"):
        limitsim.simulate_limit(task, MUP, arch=Architecture(block="pre", block_depth=2), **opts)


def test_arch_equals_loose_keywords_depth_limit(task):
    arch = Architecture("abs", block_depth=2)
    opts = dict(depths=(2, 3, 4), n_particles=2 * 8 * 4 * 8, progress=False)
    a = limitsim.depth_limit(task, MUP, arch=arch, **opts)
    b = limitsim.depth_limit(task, MUP, phi="abs", block_depth=2, **opts)
    _same_run(a, b)
    assert a.arch is arch and a.param is MUP and a.config["depths"] == (2, 3, 4)
    assert a.f_eval_se is not None and np.all(a.f_eval_se > 0)
    with pytest.raises(ValueError, match="and block_depth=1 conflict"):
        limitsim.depth_limit(task, MUP, arch=arch, block_depth=1, **opts)


# ------------------------------------------------------------------------ Run fields
def test_run_carries_param_arch_and_every_standard_error(task, tmp_path):
    arch = Architecture("tanh")
    run = limitsim.simulate_limit(
        task, MUP, depth=2, arch=arch, n_particles=2 * 8 * 4 * 8, seed=3, progress=False
    )
    assert run.param is MUP and run.arch is arch
    assert run.f_eval_se is not None and run.f_eval_se.shape == run.f_eval.shape
    assert np.all(run.f_eval_se > 0)
    assert "f_eval_se" not in run.config  # a field, not hidden in the configuration
    config = run.config
    assert config["phi"] == "tanh" and config["block"] == "post" and config["depth"] == 2
    assert config["parametrization"] == "depth_mup" and config["eta"] == 0.5
    assert config["n_replicas"] == 8 and config["seed"] == 3
    run.save(tmp_path / "run.nc")
    import xarray as xr

    with xr.open_dataset(tmp_path / "run.nc") as ds:
        np.testing.assert_array_equal(ds["f_eval_se"].values, run.f_eval_se)
        assert ds.attrs["config_phi"] == "tanh" and ds.attrs["config_alpha"] == 0.5


def test_every_route_derives_the_same_configuration_keys(task):
    linear = limitsim.linear_limit(task, MUP, depth=2)
    finite = limitsim.train_finite(task, MUP, depth=2, width=4, phi="linear")
    shared = {"phi", "block", "block_depth", "pre_ln", "parametrization", "alpha", "gamma"}
    shared |= {"a", "eta", "optimizer", "base_depth", "beta1", "beta2", "eps", "depth"}
    for run in (linear, finite):
        assert shared <= set(run.config), run.route
        assert run.config["phi"] == "linear" and run.config["depth"] == 2
    assert linear.arch == Architecture("linear") and linear.param is MUP
    assert linear.config["divergence_bound"] == finite.config["divergence_bound"] == 1e8


# ------------------------------------------------------------------------ validation
def test_divergence_test_is_one_rule():
    values = np.array([[1.0, 2.0], [1.0, np.nan], [1.0, -3.0], [np.inf, 0.0]])
    np.testing.assert_array_equal(bounded(values, 2.5), [True, False, False, False])
    np.testing.assert_array_equal(bounded(values, 3.0), [True, False, True, False])
    assert diverged(values[:1], 2.0) is False
    assert diverged(values[:1], 1.5) is True
    assert diverged(np.array([np.nan]), 1e300) is True


def test_shared_checks_name_the_parameter():
    assert check_integer("eval_every", np.int64(0)) == 0
    with pytest.raises(ValueError, match="eval_every must be a non-negative integer, got -1"):
        check_integer("eval_every", -1)
    with pytest.raises(ValueError, match="threads must be a positive integer, got True"):
        check_integer("threads", True, minimum=1)
    with pytest.raises(ValueError, match="n must be an integer >= 2, got 1"):
        check_integer("n", 1, minimum=2)
    assert check_positive_real("bound", 2) == 2.0
    with pytest.raises(ValueError, match="bound must be > 0, got nan"):
        check_positive_real("bound", float("nan"))
    with pytest.raises(ValueError, match="bound must be > 0, got 'x'"):
        check_positive_real("bound", "x")


def test_layer_dispatch_refuses_unknown_layers():
    k = np.arange(1.0, 11.0)
    hyper = Hyper(*(k * (i + 1) for i in range(10)))
    rate, scale = hyper.rates(Layer.INPUT)
    np.testing.assert_array_equal(rate, hyper.rate_in)
    np.testing.assert_array_equal(scale, hyper.scale_in)
    assert hyper.rates(Layer.OUTPUT)[0] is hyper.rate_out
    with pytest.raises(ValueError, match="layer must be one of"):
        hyper.rates("V")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Layer("W")


def test_fields_may_be_given_in_the_issue_order():
    """``Architecture(phi, block, block_depth, pre_ln)`` positionally equals the keywords."""
    positional = Architecture("abs", "post", 2, True)
    assert positional == Architecture(phi="abs", block="post", block_depth=2, pre_ln=True)
    assert (positional.block, positional.block_depth, positional.pre_ln) == ("post", 2, True)
