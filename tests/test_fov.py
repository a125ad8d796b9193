"""Field-of-view expansion by shifted renders (sg3pipe.render.fov)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import assert_close_to_scale
from generators import make_generator

from sg3pipe.render.fov import expand_fov, tile_grid
from sg3pipe.transforms import make_transform, pixel_shift

# Two frames turned by 25 and -30 degrees and moved: a shift composed on the wrong side of M would be turned too.
TRANSFORMS = make_transform(np.array([25.0, -30.0]), np.array([0.05, -0.1]), np.array([0.02, 0.07]))
PAD = (12, 20, 16, 8)  # left, right, top, bottom: all 9 tiles, none of the same size
# The centre of the canvas against a plain render: the same math in another batch composition, measured
# 9e-7 (T) and 1.5e-6 (R) of the largest value.
TOL_BATCH = 1e-5
# A window of the canvas against a render shifted by the same offset (both frames, offsets across tile seams):
# measured 63.4-74.2 dB (T) and 80.0-93.1 dB (R) on the small random generators; the shift on the wrong side
# of M gives at most 45.7 dB, no shift at all 18-34 dB.
EQUIVARIANCE_FLOOR_DB = 55.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    return 10 * math.log10(4 / (a - b).double().square().mean().item())


@pytest.fixture(scope="module", params=["T", "R"])
def setup(request):
    G = make_generator(request.param)
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)))
    return G, ws


def plain(G, ws, m):
    with torch.no_grad():
        return G.synthesis(ws, transform=torch.linalg.inv(torch.as_tensor(m)).float())


def test_tile_grid_renders_only_what_the_padding_needs():
    assert tile_grid((0, 0, 0, 0), 32) == [(0, 0)]
    assert tile_grid((5, 0, 0, 0), 32) == [(-1, 0), (0, 0)]
    assert tile_grid((0, 3, 0, 32), 32) == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert len(tile_grid((1, 1, 1, 1), 32)) == 9 and len(tile_grid((33, 0, 0, 0), 32)) == 3
    with pytest.raises(ValueError, match=">= 0"):
        tile_grid((0, -1, 0, 0), 32)


def test_zero_padding_is_the_plain_render(setup):
    """(a)"""
    G, ws = setup
    expected = plain(G, ws, TRANSFORMS)
    assert_close_to_scale(expand_fov(G, ws, TRANSFORMS), expected, TOL_BATCH, dim=(1, 2, 3))
    assert_close_to_scale(expand_fov(G, ws, None), plain(G, ws, np.eye(3)), TOL_BATCH, dim=(1, 2, 3))


def test_centre_of_the_canvas_is_the_plain_render(setup):
    """(b) and (d): the original view sits at rows top:top+R, columns left:left+R of a canvas of the padded size."""
    G, ws = setup
    res = G.img_resolution
    left, right, top, bottom = PAD
    canvas = expand_fov(G, ws, torch.as_tensor(TRANSFORMS), PAD)
    assert canvas.shape == (2, 3, res + top + bottom, res + left + right)
    assert torch.isfinite(canvas).all()  # every canvas pixel was written
    worst = assert_close_to_scale(
        canvas[:, :, top : top + res, left : left + res], plain(G, ws, TRANSFORMS), TOL_BATCH, dim=(1, 2, 3)
    )
    print(f"centre vs plain render: {worst:.2g} of the largest value")


@pytest.mark.parametrize("pad", [(3, 0, 0, 40), (0, 17, 5, 0), (0, 0, 0, 1)])
def test_asymmetric_padding_shapes(setup, pad):
    """(d) one-sided and more-than-one-tile paddings."""
    G, ws = setup
    res = G.img_resolution
    left, right, top, bottom = pad
    canvas = expand_fov(G, ws[:1], TRANSFORMS[:1], pad)
    assert canvas.shape == (1, 3, res + top + bottom, res + left + right)
    assert torch.isfinite(canvas).all()


def test_canvas_windows_are_shifted_renders(setup):
    """(c) StyleGAN3 is translation-equivariant: the canvas window at offset (dx, dy) from the original view is
    what the generator renders with the content moved by (-dx, -dy) pixels after the frame's transform."""
    G, ws = setup
    res = G.img_resolution
    left, right, top, bottom = PAD
    canvas = expand_fov(G, ws, TRANSFORMS, PAD)
    offsets = [(-12, -16), (20, 8), (-12, 8), (20, -16), (-7, 5), (13, -9), (0, -16), (20, 0)]
    shifted = np.stack([pixel_shift(-dx, -dy, res) @ TRANSFORMS for dx, dy in offsets])  # [O, B, 3, 3]
    expected = plain(G, ws.repeat(len(offsets), 1, 1), shifted.reshape(-1, 3, 3)).reshape(len(offsets), 2, 3, res, res)
    values = []
    for (dx, dy), want in zip(offsets, expected, strict=True):
        window = canvas[:, :, top + dy : top + dy + res, left + dx : left + dx + res]
        values += [psnr(window[i], want[i]) for i in range(2)]
    print(f"canvas windows vs shifted renders: {min(values):.1f} to {max(values):.1f} dB")
    assert min(values) >= EQUIVARIANCE_FLOOR_DB


def test_all_tiles_of_all_frames_in_as_few_synthesis_calls_as_asked(setup, monkeypatch):
    """(e) count the real G.synthesis calls and their batch sizes through a wrapper that still renders: 3 frames
    x 4 tiles in one call, or in calls of at most 5 renders when asked; both give the same canvas."""
    G, ws = setup
    ws = torch.cat([ws, ws[:1]])
    real, sizes = G.synthesis.forward, []

    def counting(ws, *args, **kwargs):
        sizes.append(len(ws))
        return real(ws, *args, **kwargs)

    monkeypatch.setattr(G.synthesis, "forward", counting)
    pad = (5, 0, 0, 9)  # tiles (-1, 0), (0, 0), (-1, 1), (0, 1)
    together = expand_fov(G, ws, TRANSFORMS[[0, 1, 0]], pad)
    assert sizes == [12]
    in_fives = expand_fov(G, ws, TRANSFORMS[[0, 1, 0]], pad, batch=5)
    assert sizes == [12, 5, 5, 2]
    assert_close_to_scale(in_fives, together, TOL_BATCH, dim=(1, 2, 3))
    assert_close_to_scale(together[2], together[0], TOL_BATCH)  # the same frame twice, in other batch slots


def test_bad_arguments(setup):
    G, ws = setup
    with pytest.raises(ValueError, match="ws"):
        expand_fov(G, ws[0], None, PAD)
    with pytest.raises(ValueError, match="batch"):
        expand_fov(G, ws, None, PAD, batch=0)
