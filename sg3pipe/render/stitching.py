"""STIT's stitching tuning: tune the generator a few steps so that an edited crop's border matches the source
crop before it is pasted back, while its interior keeps the edit (Tzaban et al. 2022, "Stitch it in Time",
arXiv:2201.08361; rotemtzaban/STIT ``edit_video_stitching_tuning.py``).

The paste-back mask (:mod:`sg3pipe.render.pasteback` or :mod:`sg3pipe.render.face_parsing`) splits a crop in
three: where it is 1 the edit replaces the frame, where it is between 0 and 1 (the feathered ring) edit and frame
are blended, and where it is 0 the frame stays. A seam shows in the ring when the edit's skin or background
differs from the frame's there. The tuning minimises

    mean over the ring of |render - source crop|^2 + mean over the interior of |render - untuned edit|^2

over the synthesis layers of a copy of the (PTI) generator, the Fourier input layer and the mapping frozen
as in PTI, with Adam. STIT tunes one copy per frame for about 100 steps; here one copy is tuned per batch of
frames (``render.batch``), which costs ``steps`` generator passes per batch instead of per frame.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.pixels import to_tensor
from sg3pipe.render.variants import Variant, render_images


def stitch(
    G: Generator,
    variant: Variant,
    rows: np.ndarray,
    masks: np.ndarray,
    source_crops: np.ndarray,
    steps: int,
    lr: float = 3e-4,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Renders of ``variant``'s frames ``rows`` on a copy of ``G`` tuned for ``steps`` Adam steps (module
    docstring).

    Args:
        G: the generator that draws the variant (left untouched).
        variant: an edit variant (sg3pipe.render.variants), drawn with its transforms.
        rows: ``[B]`` usable frame indices.
        masks: ``[B, R, R]`` paste-back masks in [0, 1], crop pixels.
        source_crops: ``[B, R, R, 3]`` uint8 source crops of the same frames.
        steps: Adam steps (0 returns the untuned renders).
        lr: Adam learning rate (STIT: 3e-4).

    Returns:
        ``(images [B, 3, R, R] in [-1, 1], {"ring_l2_before", "ring_l2_after"})``: the tuned renders, and the
        mean squared difference to the source crops over the ring before and after the tuning.
    """
    device = G.mapping.w_avg.device
    with torch.no_grad():
        edited = render_images(G, variant, rows).clamp(-1, 1)
    source = to_tensor(source_crops).to(device)
    weight = torch.from_numpy(np.asarray(masks, dtype=np.float32)).to(device).unsqueeze(1)
    ring, interior = ((weight > 0) & (weight < 1)).float(), (weight >= 1).float()

    def ring_l2(images: torch.Tensor) -> float:
        return float(((images - source).square() * ring).sum() / (3 * ring.sum()).clamp_min(1))

    before = ring_l2(edited)
    if steps == 0 or ring.sum() == 0:
        return edited, {"ring_l2_before": before, "ring_l2_after": before}
    tuned = copy.deepcopy(G)
    tuned.requires_grad_(False)
    params = [p for name, p in tuned.synthesis.named_parameters() if not name.startswith("input.")]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            images = render_images(tuned, variant, rows)
            squared = (images - source).square() * ring
            kept = (images - edited).square() * interior
            loss = squared.sum() / (3 * ring.sum()).clamp_min(1) + kept.sum() / (3 * interior.sum()).clamp_min(1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        result = render_images(tuned, variant, rows).clamp(-1, 1)
    return result, {"ring_l2_before": before, "ring_l2_after": ring_l2(result)}
