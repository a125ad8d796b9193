"""Small random generators that are quick on two CPU cores (shared by the tests)."""

from __future__ import annotations

import torch

from sg3pipe.networks.stylegan3 import Generator

SMALL = {"z_dim": 32, "c_dim": 0, "w_dim": 32, "img_channels": 3, "channel_base": 1024, "channel_max": 32}
CONFIGS = {"T": {}, "R": {"conv_kernel": 1, "use_radial_filters": True}}


def make_generator(cfg: str = "T", resolution: int = 32, seed: int = 0, **overrides) -> Generator:
    """A small random generator; `cfg` is "T" or "R". Weights are perturbed so no layer is trivial."""
    torch.manual_seed(seed)
    kwargs = {**SMALL, "img_resolution": resolution, **CONFIGS[cfg], **overrides}
    G = Generator(**kwargs).eval()
    with torch.no_grad():
        # Fresh generators have zero biases, unit magnitude EMAs and an input affine that ignores w;
        # randomise them so the tests exercise every term of the math.
        G.mapping.w_avg.normal_()
        for name in G.synthesis.layer_names:
            mod = getattr(G.synthesis, name)
            mod.bias.normal_(0, 0.1)
            mod.magnitude_ema.fill_(0.5 + torch.rand(()).item())
        G.synthesis.input.affine.weight.normal_(0, 0.3)
    return G
