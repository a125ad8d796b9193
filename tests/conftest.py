"""Shared fixtures."""

from __future__ import annotations

import pytest
from generators import CONFIGS, make_generator

from sg3pipe.networks.stylegan3 import Generator


@pytest.fixture(params=sorted(CONFIGS))
def generator(request) -> Generator:
    """A small 32x32 generator, once per config (T and R)."""
    return make_generator(request.param)
