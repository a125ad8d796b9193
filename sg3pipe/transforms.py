"""Similarity transforms in the convention of StyleGAN3's ``synthesis.input.transform``.

The convention, stated once for the whole project (``make_transform`` of NVlabs/stylegan3 ``gen_images.py`` and
of yuval-alaluf/stylegan3-editing ``utils/common.py``, with a scale added):

* Image coordinates are ``(x, y)`` with ``x`` to the right (columns) and ``y`` down (rows), the origin at
  the image centre and one unit equal to the output image width. Pixel coordinates follow dlib and
  OpenCV: the centre of pixel ``(col, row)`` is the point ``(col, row)``, so it sits at unit coordinates
  ``((col + 0.5) / W - 0.5, (row + 0.5) / W - 0.5)`` in a ``W``-wide square image
  (:func:`pixel_to_unit`, :func:`unit_to_pixel`).
* ``make_transform(angle_deg, tx, ty, scale)`` is the 3x3 matrix ``M`` that moves image content:
  ``M = [[s*c, s*sn, tx], [-s*sn, s*c, ty], [0, 0, 1]]`` with ``c, sn = cos, sin(angle)``. The content at
  point ``p`` ends up at ``M @ p``. A positive angle turns the content counter-clockwise as seen on screen;
  ``tx = 1.0`` moves it one image width to the right.
* The generator's input layer samples its Fourier features at ``T @ x``, so what is written into
  ``synthesis.input.transform`` (and what ``G.synthesis(ws, transform=T)`` takes) is ``T = inverse(M)``.
  NVlabs' ``gen_images.py`` and the editing repo do the same. :func:`synthesis_transform` returns it.

All functions broadcast over leading dimensions and return float64 numpy arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def make_transform(angle_deg: ArrayLike, tx: ArrayLike, ty: ArrayLike, scale: ArrayLike = 1.0) -> np.ndarray:
    """The content-moving similarity ``M`` for a rotation, translation and scale.

    Args:
        angle_deg: rotation in degrees, counter-clockwise on screen, shape ``[...]``.
        tx, ty: translation in image widths, shape ``[...]``.
        scale: isotropic zoom factor about the image centre, shape ``[...]``.

    Returns:
        ``[..., 3, 3]`` float64 matrices.
    """
    angle, tx, ty, scale = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (angle_deg, tx, ty, scale)))
    rad = np.deg2rad(angle)
    c, s = np.cos(rad) * scale, np.sin(rad) * scale
    m = np.zeros(angle.shape + (3, 3))
    m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = c, s, tx
    m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = -s, c, ty
    m[..., 2, 2] = 1.0
    return m


def synthesis_transform(angle_deg: ArrayLike, tx: ArrayLike, ty: ArrayLike, scale: ArrayLike = 1.0) -> np.ndarray:
    """The matrix to pass as ``G.synthesis(ws, transform=...)`` to move the content by ``make_transform``.

    Returns:
        ``[..., 3, 3]`` float64 matrices, ``inverse(make_transform(angle_deg, tx, ty, scale))``.
    """
    return np.linalg.inv(make_transform(angle_deg, tx, ty, scale))


def transform_params(m: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decompose content-moving similarities back into ``(angle_deg, tx, ty, scale)``.

    Args:
        m: ``[..., 3, 3]`` matrices of the form made by :func:`make_transform`.

    Returns:
        Four arrays of shape ``[...]``: angle in degrees in ``(-180, 180]``, tx and ty in image widths, scale.
    """
    m = np.asarray(m, dtype=np.float64)
    # Average the two estimates of each entry so a slightly non-similar matrix gives the nearest similarity.
    c = 0.5 * (m[..., 0, 0] + m[..., 1, 1])
    s = 0.5 * (m[..., 0, 1] - m[..., 1, 0])
    return np.rad2deg(np.arctan2(s, c)), m[..., 0, 2], m[..., 1, 2], np.hypot(c, s)


def pixel_shift(pixels_x: ArrayLike, pixels_y: ArrayLike, resolution: int) -> np.ndarray:
    """The content-moving translation by a number of output pixels (the field-of-view shift ``pixels / res``).

    Returns:
        ``[..., 3, 3]`` float64 matrices.
    """
    return make_transform(
        0.0,
        np.asarray(pixels_x, dtype=np.float64) / resolution,
        np.asarray(pixels_y, dtype=np.float64) / resolution,
    )


def pixel_to_unit(points: ArrayLike, width: int) -> np.ndarray:
    """Pixel coordinates (centre of pixel ``(col, row)`` at ``(col, row)``) to unit image coordinates.

    Args:
        points: ``[..., 2]`` ``(x, y)`` pixel coordinates in an image ``width`` pixels wide.
    """
    return (np.asarray(points, dtype=np.float64) + 0.5) / width - 0.5


def unit_to_pixel(points: ArrayLike, width: int) -> np.ndarray:
    """Unit image coordinates (origin at the centre, 1 = image width) to pixel coordinates; ``[..., 2]``."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * width - 0.5
