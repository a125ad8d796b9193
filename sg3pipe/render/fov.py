"""Field-of-view expansion: render beyond the borders of the crop by shifting the generator's view.

StyleGAN3 is translation-equivariant: translating its Fourier input moves the whole image, so content the
original view never showed can be rendered by shifting it into view (the field-of-view expansion of "Third
Time's the Charm? Image and Video Editing with StyleGAN3", Alaluf, Patashnik et al. 2022, arXiv:2201.13433;
yuval-alaluf/stylegan3-editing ``utils/fov_expansion.py``). The expanded canvas is a
grid of ``R x R`` tiles: tile ``(kx, ky)`` shows the output pixels
``[kx R, (kx + 1) R) x [ky R, (ky + 1) R)`` of the (infinite) original view, so it is rendered with the
content moved by ``(-kx R, -ky R)`` pixels. The shift acts on the already transformed content, in output
pixels, so it is applied *after* the frame's own transform ``M``: ``M_tile = pixel_shift(-kx R, -ky R) @ M``,
and the generator takes ``inverse(M_tile)`` (sg3pipe.transforms). Padding up to ``R`` on every side needs
at most 9 tiles (centre, 4 edges, 4 corners); only the tiles the padding reaches are rendered.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.transforms import pixel_shift


def tile_grid(pad: tuple[int, int, int, int], resolution: int) -> list[tuple[int, int]]:
    """The tiles ``(kx, ky)`` a padding needs, row by row; ``(0, 0)`` is the original view.

    Args:
        pad: ``(left, right, top, bottom)`` in output pixels, each >= 0.
        resolution: tile side ``R`` in pixels.
    """
    left, right, top, bottom = (int(p) for p in pad)
    if min(left, right, top, bottom) < 0:
        raise ValueError(f"pad must be (left, right, top, bottom) >= 0, got {pad}")
    kxs = range(-math.ceil(left / resolution), math.ceil(right / resolution) + 1)
    kys = range(-math.ceil(top / resolution), math.ceil(bottom / resolution) + 1)
    return [(kx, ky) for ky in kys for kx in kxs]


def tile_transforms(transforms: np.ndarray, tiles: list[tuple[int, int]], resolution: int) -> np.ndarray:
    """Content-moving matrices of every tile of every frame, ``pixel_shift(-kx R, -ky R) @ M``.

    Args:
        transforms: ``[B, 3, 3]`` content-moving ``M`` per frame.
        tiles: ``[(kx, ky), ...]`` from :func:`tile_grid`.

    Returns:
        ``[T, B, 3, 3]`` float64, tile-major.
    """
    kx, ky = np.array(tiles, dtype=np.float64).T
    shifts = pixel_shift(-kx * resolution, -ky * resolution, resolution)  # [T, 3, 3]
    return shifts[:, None] @ np.asarray(transforms, dtype=np.float64)[None]


@torch.no_grad()
def expand_fov(
    G: Generator,
    ws: torch.Tensor,
    transforms: np.ndarray | torch.Tensor | None = None,
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    batch: int | None = None,
) -> torch.Tensor:
    """Render each frame on a canvas enlarged by ``pad``, stitched from shifted renders.

    All tiles of all frames are rendered together, ``batch`` renders per ``G.synthesis`` call (``None``: one
    call for everything).

    Args:
        G: the generator (its device is ``ws``' device).
        ws: ``[B, num_ws, w_dim]`` latents.
        transforms: ``[B, 3, 3]`` or ``[3, 3]`` content-moving ``M`` per frame (aligned crop -> crop, as in
            frames.parquet; the generator gets ``inverse``), or ``None`` for the identity.
        pad: ``(left, right, top, bottom)`` extra output pixels on each side.
        batch: the most renders per ``G.synthesis`` call.

    Returns:
        ``[B, img_channels, R + top + bottom, R + left + right]`` float32 images in the generator's range,
        the original view at rows ``top : top + R`` and columns ``left : left + R``.
    """
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim):
        raise ValueError(f"ws: expected [B, {G.num_ws}, {G.w_dim}], got {list(ws.shape)}")
    if batch is not None and batch < 1:
        raise ValueError(f"batch must be >= 1 or None, got {batch}")
    n, res = ws.shape[0], G.img_resolution
    if transforms is None:
        transforms = np.eye(3)
    if torch.is_tensor(transforms):
        transforms = transforms.detach().cpu().double().numpy()
    transforms = np.broadcast_to(np.asarray(transforms, dtype=np.float64), (n, 3, 3))
    left, right, top, bottom = (int(p) for p in pad)
    tiles = tile_grid(pad, res)

    # Tile-major: renders [k * B, (k + 1) * B) are tile k of every frame.
    inverse = np.linalg.inv(tile_transforms(transforms, tiles, res)).reshape(-1, 3, 3)
    inverse = torch.as_tensor(inverse, dtype=torch.float32, device=ws.device)
    all_ws = ws.repeat(len(tiles), 1, 1)
    step = len(all_ws) if batch is None else batch
    renders = torch.cat(
        [G.synthesis(all_ws[i : i + step], transform=inverse[i : i + step]) for i in range(0, len(all_ws), step)]
    )

    height, width = res + top + bottom, res + left + right
    canvas = renders.new_full((n, renders.shape[1], height, width), float("nan"))  # NaN: a pixel no tile wrote
    for k, (kx, ky) in enumerate(tiles):
        # Canvas rows/columns of the tile, clipped to the canvas; the tile's own rows/columns follow.
        r0, c0 = top + ky * res, left + kx * res
        r_lo, r_hi, c_lo, c_hi = max(r0, 0), min(r0 + res, height), max(c0, 0), min(c0 + res, width)
        tile = renders[k * n : (k + 1) * n]
        canvas[:, :, r_lo:r_hi, c_lo:c_hi] = tile[:, :, r_lo - r0 : r_hi - r0, c_lo - c0 : c_hi - c0]
    return canvas
