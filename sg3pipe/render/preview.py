"""Preview renders of a generator: a grid of samples and strips of translations and rotations."""

from __future__ import annotations

import numpy as np
import torch

from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.pixels import tile, to_uint8
from sg3pipe.transforms import synthesis_transform


@torch.no_grad()
def sample_grid(G: Generator, seeds: int, truncation_psi: float, device: torch.device) -> np.ndarray:
    """Images of seeds ``0..seeds-1`` (z from ``torch.Generator().manual_seed(seed)``), tiled square-ish.

    Returns:
        ``[rows*H, cols*W, 3]`` uint8.
    """
    z = torch.stack([torch.randn(G.z_dim, generator=torch.Generator().manual_seed(s)) for s in range(seeds)])
    ws = G.mapping(z.to(device), truncation_psi=truncation_psi)
    images = torch.cat([G.synthesis(chunk) for chunk in ws.split(16)])
    return tile(to_uint8(images), int(np.ceil(np.sqrt(seeds))))


@torch.no_grad()
def transform_strip(G: Generator, seed: int, truncation_psi: float, steps: int, device: torch.device) -> np.ndarray:
    """One latent rendered under a sweep of transforms: row 1 translates x by -0.25..0.25 image widths,
    row 2 translates y likewise, row 3 rotates by -45..45 degrees (counter-clockwise positive).

    Returns:
        ``[3*H, steps*W, 3]`` uint8.
    """
    z = torch.randn(G.z_dim, generator=torch.Generator().manual_seed(seed))[None]
    ws = G.mapping(z.to(device), truncation_psi=truncation_psi).expand(steps, -1, -1)
    shifts = np.linspace(-0.25, 0.25, steps)
    sweeps = [
        synthesis_transform(0.0, shifts, 0.0),
        synthesis_transform(0.0, 0.0, shifts),
        synthesis_transform(np.linspace(-45, 45, steps), 0.0, 0.0),
    ]
    images = torch.cat([G.synthesis(ws, transform=torch.as_tensor(t, device=device)) for t in sweeps])
    return tile(to_uint8(images), steps)
