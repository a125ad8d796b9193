"""Optimisation-based inversion: find the latents whose renders best match aligned images.

For users without an encoder (config ``encode.method: projector``); needs only a generator. Each image's
latent starts at the generator's average ``w_avg`` and is optimised with Adam (cosine learning-rate decay to
0 over ``steps``) against ``MSE(G(w), x) + LPIPS(G(w), x)`` (LPIPS when a model is given). A whole batch of
images is optimised at once; since the loss is a sum of per-image terms and Adam's update is per element,
each image's result does not depend on the batch it is in.

Spaces: ``w`` optimises one ``[w_dim]`` vector per image, broadcast to all rows; ``w+`` one row per layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from sg3pipe.networks.stylegan3 import Generator, _assert_shape

log = logging.getLogger(__name__)

SPACES = ("w", "w+")


@dataclass(frozen=True)
class ProjectorSettings:
    """Config ``encode.projector`` (defaults as in config/schemas/config.schema.yaml)."""

    steps: int = 200  # Adam steps per image
    lr: float = 0.05  # initial learning rate (cosine decay to 0)
    space: str = "w+"  # w | w+


def project(
    G: Generator,
    images: torch.Tensor,
    settings: ProjectorSettings = ProjectorSettings(),
    lpips: nn.Module | None = None,
    batch_size: int = 16,
    progress: bool = False,
) -> torch.Tensor:
    """Project aligned images into the generator's latent space (module docstring).

    Args:
        G: the generator (its weights are not changed).
        images: ``[N, img_channels, R, R]`` in [-1, 1], ``R = G.img_resolution``.
        settings: steps, learning rate and space.
        lpips: an LPIPS module (``m(a, b) -> [N, 1, 1, 1]``) added to the loss, or None for MSE alone.
        batch_size: images optimised together (bounds memory; results do not depend on it).
        progress: show a tqdm bar over the steps of each batch.

    Returns:
        W+ latents ``[N, num_ws, w_dim]`` float32 on ``images``' device; the work runs on G's device.
    """
    res = G.img_resolution
    _assert_shape(images, [None, G.img_channels, res, res], "images")
    if settings.space not in SPACES or settings.steps < 0 or batch_size < 1:
        raise ValueError(f"need space in {SPACES}, steps >= 0 and batch_size >= 1; got {settings}, {batch_size=}")
    device = G.mapping.w_avg.device
    out = [
        _project_batch(G, images[start : start + batch_size].to(device, torch.float32), settings, lpips, progress)
        for start in range(0, len(images), batch_size)
    ]
    return torch.cat(out).to(images.device) if out else images.new_zeros([0, G.num_ws, G.w_dim])


def _project_batch(
    G: Generator, target: torch.Tensor, settings: ProjectorSettings, lpips: nn.Module | None, progress: bool
) -> torch.Tensor:
    """Optimise the latents of one batch ``[B, C, R, R]`` -> ``[B, num_ws, w_dim]``."""
    rows = 1 if settings.space == "w" else G.num_ws
    w = G.mapping.w_avg.detach().expand(len(target), rows, -1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=settings.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(settings.steps, 1))
    for _ in tqdm(range(settings.steps), desc="projector", unit="step", disable=not progress, mininterval=5):
        render = G.synthesis(w.expand(-1, G.num_ws, -1))
        loss = reconstruction_loss(render, target, lpips).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return w.detach().expand(-1, G.num_ws, -1).clone()


def reconstruction_loss(render: torch.Tensor, target: torch.Tensor, lpips: nn.Module | None = None) -> torch.Tensor:
    """Per-image ``MSE + LPIPS`` of ``[N, C, H, W]`` images in [-1, 1] -> ``[N]`` (LPIPS only when given)."""
    loss = (render - target).square().mean(dim=(1, 2, 3))
    if lpips is not None:
        loss = loss + lpips(render, target).reshape(len(render))
    return loss
