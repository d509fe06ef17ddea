"""The paper's experiments, one module per experiment (``limitsim figures`` runs them).

Every module exposes ``NAME``, ``TITLE``, ``run(sizes) -> xarray.Dataset`` (``sizes`` is the
experiment's entry of a profile in :mod:`limitsim.experiments.profiles`), ``plot(ds, out_dir)
-> list[Path]`` and ``claims(ds) -> list[Claim]``.
"""

#: Experiment modules in the order of the report.
EXPERIMENTS = (
    "phase_diagram",
    "init_kernels",
    "scaling_exponents",
    "transfer",
    "multiplier",
    "nonlinearity",
    "diversity",
    "prenonlin",
    "linear_rms",
    "block_depth",
    "block_heatmap",
    "convergence",
    "stability",
    "linearization",
    "limit_transfer",
)
