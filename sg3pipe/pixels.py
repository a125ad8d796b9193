"""Pixels: the conversions between the generator's images and uint8 frames, tiling, and PNG files.

A generator image is a float tensor ``[N, 3, H, W]`` in [-1, 1]; a frame is ``[H, W, 3]`` uint8 RGB, and pixel
value ``x`` is ``x / 127.5 - 1`` in the generator's range (the official code's convention).
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from sg3pipe.io.atomic import atomic_path


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``[N, H, W, 3]`` uint8 frames -> ``[N, 3, H, W]`` float32 in [-1, 1] (on the CPU)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` images in [-1, 1] -> ``[N, H, W, 3]`` uint8 frames (clipped to [-1, 1], rounded)."""
    return images.detach().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def tile(images: np.ndarray, columns: int) -> np.ndarray:
    """Lay ``[N, H, W, C]`` images out row by row, ``columns`` per row (missing cells black):
    ``[ceil(N / columns) * H, columns * W, C]``."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    canvas = np.zeros((rows * h, columns * w, c), dtype=images.dtype)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        canvas[r * h : (r + 1) * h, col * w : (col + 1) * w] = image
    return canvas


def save_png(path: str | os.PathLike, image: np.ndarray, provenance: dict) -> None:
    """Write an ``[H, W, 3]`` uint8 image atomically, with the provenance as JSON in a text chunk ``sg3pipe``."""
    info = PngImagePlugin.PngInfo()
    info.add_text("sg3pipe", json.dumps(provenance))
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, pnginfo=info)
