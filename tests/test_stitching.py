"""STIT's stitching tuning: the ring of the paste-back mask moves towards the source, the interior keeps the edit."""

from __future__ import annotations

import numpy as np
import torch
from generators import make_generator

from sg3pipe.pixels import to_uint8
from sg3pipe.render.pasteback import feather
from sg3pipe.render.stitching import stitch
from sg3pipe.render.variants import Variant, render_images
from sg3pipe.transforms import make_transform


def test_stitching_pulls_the_ring_to_the_source_and_keeps_the_interior_and_the_generator():
    G = make_generator("T", resolution=32)
    n = 3
    ws = G.mapping(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1))).detach().numpy()
    variant = Variant("edit-x-1", ws, make_transform(np.zeros(n), 0.02, -0.01), "pti")
    rows = np.arange(n)
    axis = np.arange(32) - 15.5
    distance = np.maximum(np.hypot(*np.meshgrid(axis, axis)) - 8, 0)  # a disk of radius 8 px
    masks = np.repeat(feather(torch.from_numpy(distance), 2.0, 4.0).numpy()[None], n, axis=0)
    source = np.full((n, 32, 32, 3), 200, dtype=np.uint8)  # a flat grey source crop
    before = {k: v.clone() for k, v in G.state_dict().items()}
    untuned, _ = stitch(G, variant, rows, masks, source, steps=0)
    with torch.no_grad():
        torch.testing.assert_close(untuned, render_images(G, variant, rows).clamp(-1, 1))
    tuned, ring = stitch(G, variant, rows, masks, source, steps=40, lr=3e-3)
    print(ring)
    assert ring["ring_l2_after"] < 0.5 * ring["ring_l2_before"]
    interior = torch.from_numpy(masks >= 1).unsqueeze(1).expand_as(tuned)
    kept = (tuned - untuned)[interior].square().mean()
    assert kept < 0.2 * ring["ring_l2_before"]  # the edit inside moved far less than the ring did
    assert to_uint8(tuned).shape == (n, 32, 32, 3)
    for name, value in G.state_dict().items():
        assert torch.equal(value, before[name]), name  # a copy was tuned
