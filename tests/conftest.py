"""Shared fixtures, and the comparison of two float32 computations the numeric tests share."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from generators import CONFIGS, make_generator
from workflow_runs import TARGETS, prepare_sample_run, snakemake

from sg3pipe.networks.stylegan3 import Generator


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """The ``results`` folder of the short sample run (tests/workflow_runs.py) through the whole chain: shared
    by the render, report, determinism and SLURM tests, so the chain runs once. ``--notemp`` keeps the crops and
    the tuned generator, which the render tests read."""
    folder = prepare_sample_run(tmp_path_factory.mktemp("sample_run"))
    result = snakemake(folder, "--cores", "2", "--notemp", *TARGETS)
    assert result.returncode == 0, result.stderr[-4000:]
    return folder / "results"


@pytest.fixture(params=sorted(CONFIGS))
def generator(request) -> Generator:
    """A small 32x32 generator, once per config (T and R)."""
    return make_generator(request.param)


def assert_close_to_scale(actual, expected, rel: float, dim=None, msg: str = "") -> float:
    """Assert ``max |actual - expected| <= rel * max |expected|``, over the whole tensors (``dim=None``) or per
    slice: ``dim`` names the dimensions each maximum is taken over (``dim=-1``: per row of the last dimension,
    ``dim=(1, 2, 3)``: per image of an NCHW batch, ``dim=()``: per element). Returns the worst ratio found.

    Two float32 computations of the same math (another implementation, batch size, chunking or order of
    summation) round differently, and how they round depends on the CPU's vector width (oneDNN, MKL and ATen pick
    their kernels at run time: SSE4.1, AVX2 or AVX-512). Element-wise tolerances fail on the elements that cancel
    to near zero; an error measured against the scale of what is compared does not, while a wrong tap or a missing
    factor, which moves the result by a fraction of that scale, still fails. Tensors or numpy arrays; compared in
    float64. NaN anywhere fails.
    """
    actual, expected = (
        t if torch.is_tensor(t) else torch.from_numpy(np.array(t, np.float64)) for t in (actual, expected)
    )
    assert actual.shape == expected.shape, f"{msg} shapes differ: {tuple(actual.shape)} vs {tuple(expected.shape)}"
    actual, expected = actual.detach().double(), expected.detach().double()
    if actual.numel() == 0:
        return 0.0
    error, scale = (actual - expected).abs(), expected.abs()
    if dim != ():  # dim=(): each element against its own magnitude
        dim = tuple(range(actual.ndim)) if dim is None else dim
        error, scale = error.amax(dim=dim, keepdim=True), scale.amax(dim=dim, keepdim=True)
    ratio = error / scale
    ratio[(error == 0) & (scale == 0)] = 0.0  # a slice that is zero in both
    ratio[ratio.isnan()] = float("inf")  # NaN in either
    worst = ratio.max().item()
    if not worst <= rel:
        where = np.unravel_index(int(ratio.argmax()), tuple(ratio.shape))
        raise AssertionError(
            f"{msg}{': ' if msg else ''}max |actual - expected| is {worst:.3g} of max |expected| "
            f"(slice {tuple(int(i) for i in where)} of the reduced shape {tuple(ratio.shape)}), allowed {rel:.3g}"
        )
    return worst
