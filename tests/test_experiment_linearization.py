"""Linearization experiment (Claim 7.6, Def. E.1) and the finite route's Def. 7.7 remainder."""

import numpy as np
import pytest
import xarray as xr

from limitsim import Parametrization, Record
from limitsim.experiments import linearization as lin
from limitsim.experiments._diversity_limit import regression_task
from limitsim.finite._loop import Trainer, memory_bytes
from limitsim.finite.train import _network, train_finite

TASK = regression_task(steps=2, n_points=3, d_in=5, target_scale=1.0)


def remainder(eta, phi="tanh", **kw):
    run = train_finite(
        TASK,
        Parametrization.depth_mup(eta=eta),
        depth=4,
        width=64,
        phi=phi,
        record=Record(steps=(0, 1), backward=False, remainder=True),
        **kw,
    )
    return run.recorded.remainder


def test_remainder_vanishes_where_def_7_7_says():
    assert np.all(remainder(0.5)[0] == 0)  # step 0: W_t = W_0
    assert np.max(np.abs(remainder(0.5, phi="linear"))) < 1e-12  # linear φ: no remainder


def test_remainder_is_second_order_in_the_update():
    """Taylor: remainder ≈ m·MS(φ''(W_0 x)(ΔW x)²/2) and ΔW ∝ η after one step, so halving η
    quarters the remainder up to O(η) (x_1 also moves with η)."""
    big, small = remainder(2e-3)[1], remainder(1e-3)[1]
    np.testing.assert_allclose(big / small, 4.0, rtol=0.02)


def test_remainder_needs_a_depth_one_post_block():
    with pytest.raises(ValueError, match="block_depth=1"):
        remainder(0.1, block_depth=2)
    with pytest.raises(ValueError, match="block='post'"):
        remainder(0.1, block="pre")


def test_memory_estimate_counts_the_initial_weights_copy(rng):
    record = Record(steps=(0, 2), backward=False, remainder=True)
    param = Parametrization.depth_mup(eta=0.01)
    net = _network(TASK, [param] * 2, [0, 1], depth=3, width=16, phi="tanh")
    trainer = Trainer(TASK, net, 1e8, record, 0)
    trainer.run(progress=False)
    rec = trainer.recorder
    arrays = [net.Ut, net.Wt, net.V, trainer.f, trainer.loss]
    arrays += [a for buf in net._buffers.values() for a in vars(buf).values()]
    arrays += [rec.x, rec.h, rec.W0, rec.remainder]
    held = sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
    per_step = 2 * TASK.batch_size * 16 * 8
    assert memory_bytes(net.spec, 2, TASK, record, 0) == held + per_step


def test_tiny_profile(tiny_experiment):
    ds = tiny_experiment("linearization")
    rows = lin.claims(ds)
    assert {c.kind for c in rows} == {"paper"}
    assert len(rows) == ds.sizes["alpha_gamma"] + 2
    assert all(c.estimate.seeds == ds.sizes["seed"] for c in rows[:-2])
    assert np.isfinite(ds.scaled_remainder).all() and (ds.scaled_remainder > 0).all()


def test_claims_read_the_same_from_a_stored_dataset(tiny_experiment, tmp_path):
    """A dataset reused from netCDF (list attributes come back as arrays) gives the same rows
    as the computed one: ``limitsim figures`` reuses stored datasets."""
    ds = tiny_experiment("linearization")
    ds.to_netcdf(tmp_path / "linearization.nc")
    with xr.open_dataset(tmp_path / "linearization.nc") as stored:
        again = lin.claims(stored.load())
    assert [c.quantity for c in again] == [c.quantity for c in lin.claims(ds)]


def synthetic(exponents, offset=0.0, se=1e-3, seeds=8):
    """L · remainder = L^(α−1) per (α, γ) with 1% seed noise; E.1 = simulator + offset."""
    rng = np.random.default_rng(0)
    depths = np.array([8, 16, 32, 64])
    labels = list(exponents)
    table = np.stack(
        [
            depths[:, None] ** exponents[k]
            * np.exp(0.01 * rng.standard_normal((depths.size, seeds)))
            for k in labels
        ]
    )
    f = np.linspace(0, 1, 4)[:, None] * np.array([[1.0, -1.0]])
    ds = xr.Dataset(
        {
            "scaled_remainder": (("alpha_gamma", "depth", "seed"), table),
            "f_sim": (("step", "example"), f),
            "f_sim_se": (("step", "example"), se + 0 * f),
            **{f"f_{v}": (("step", "example"), f + offset) for v in ("corrected", "printed")},
            **{f"f_{v}_err": (("step", "example"), 0 * f) for v in ("corrected", "printed")},
        },
        coords={"alpha_gamma": labels, "depth": depths, "seed": np.arange(seeds)},
    )
    ds.attrs = {
        "phi": "tanh",
        "width": 64,
        "steps": 4,
        "e1_phi": "relu",
        "e1_grid": [8],
        "e1_depths": [4],
        "n_particles": 1,
    }
    return ds


def test_claims_on_known_exponents():
    rows = lin.claims(synthetic({"0.5,0.5": -0.5, "1,0": 0.0}))
    assert rows[0].verdict == "reproduced" and abs(rows[0].estimate.value + 0.5) < 0.02
    assert rows[1].verdict == "reproduced" and abs(rows[1].estimate.value) < 0.02
    rows = lin.claims(synthetic({"0.5,0.5": 0.3, "1,0": 0.5}))
    assert rows[0].verdict == "not reproduced" and rows[1].verdict == "not reproduced"


def test_e1_distance_against_known_offsets():
    """f = t·(1, −1) over t = 0..1 moves RMS sqrt(mean t²) = 0.62; an offset c gives D = c/0.62."""
    moved = np.sqrt(np.mean(np.linspace(0, 1, 4) ** 2))
    agree = lin.e1_distance(synthetic({"1,0": 0.0}), "corrected")
    assert agree.value < 0.01 and lin.claims(synthetic({"1,0": 0.0}))[-1].verdict == "reproduced"
    off = lin.e1_distance(synthetic({"1,0": 0.0}, offset=0.3), "corrected")
    assert abs(off.value - 0.3 / moved) < 0.01 and off.low > lin.E1_TOLERANCE
