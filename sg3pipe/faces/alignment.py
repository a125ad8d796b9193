"""FFHQ alignment quads, the per-video crop window, and warping a quad of a frame into a square image.

A *quad* is a square in a source frame given by its four corners ``[4, 2]`` in pixel coordinates
(dlib/OpenCV convention: the centre of pixel ``(col, row)`` is the point ``(col, row)``), in the order
top-left, bottom-left, bottom-right, top-right of the output image. The corners are the *outer edges* of the
output image: the quad maps the output's unit square ``[-0.5, 0.5]^2`` (sg3pipe.transforms) onto the frame by

    p = centre + 2 * u_x * x + 2 * u_y * y,     x = (q[3] - q[0]) / 2,   y = (q[1] - q[0]) / 2,

where ``u`` are unit coordinates of the output image and ``p`` pixel coordinates of the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

# dlib's 68-point layout: eye contours and the two mouth corners (the FFHQ alignment's points, as in
# yuval-alaluf/stylegan3-editing ``utils/alignment_utils.py``).
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
MOUTH_LEFT, MOUTH_RIGHT = 48, 54

# How a quad's half-size follows from the eye and mouth distances.
QUAD_RULES = ("ffhq", "editing")

BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "edge": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}


def ffhq_quad(landmarks: np.ndarray, rule: str = "ffhq") -> np.ndarray:
    """The FFHQ alignment square of 68-point landmarks.

    Eye centres are the means of points 36-41 and 42-47, the mouth centre the mean of points 48 and 54;
    the square is centred ``0.1 * eye_to_mouth`` below the eye midpoint and oriented by the eye line and the
    eye-to-mouth vector together.

    Args:
        landmarks: ``[..., 68, 2]`` pixel coordinates.
        rule: ``"ffhq"`` sizes the half-side as ``max(2 * |eye_to_eye|, 1.8 * |eye_to_mouth|)`` (the FFHQ
            dataset script); ``"editing"`` as ``2 * |eye_to_eye|`` (the stylegan3-editing repo).

    Returns:
        ``[..., 4, 2]`` float64 corners (top-left, bottom-left, bottom-right, top-right) in pixels.
    """
    if rule not in QUAD_RULES:
        raise ValueError(f"unknown quad rule {rule!r}; use one of {QUAD_RULES}")
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_left = lm[..., LEFT_EYE, :].mean(axis=-2)
    eye_right = lm[..., RIGHT_EYE, :].mean(axis=-2)
    eye_avg = 0.5 * (eye_left + eye_right)
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = 0.5 * (lm[..., MOUTH_LEFT, :] + lm[..., MOUTH_RIGHT, :]) - eye_avg
    # x: the eye line blended with the eye-to-mouth direction turned a quarter turn (y is down).
    x = eye_to_eye + np.stack([eye_to_mouth[..., 1], -eye_to_mouth[..., 0]], axis=-1)
    half = 2.0 * np.linalg.norm(eye_to_eye, axis=-1)
    if rule == "ffhq":
        half = np.maximum(half, 1.8 * np.linalg.norm(eye_to_mouth, axis=-1))
    x = x / np.linalg.norm(x, axis=-1, keepdims=True) * half[..., None]
    y = np.stack([-x[..., 1], x[..., 0]], axis=-1)
    c = eye_avg + 0.1 * eye_to_mouth
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y], axis=-2)


def quad_axes(quad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre and half-axis vectors of quads.

    Args:
        quad: ``[..., 4, 2]`` corners in pixels.

    Returns:
        ``(centre, x, y)``, each ``[..., 2]`` in pixels: ``x`` points from the centre to the middle of the
        right edge, ``y`` to the middle of the bottom edge.
    """
    q = np.asarray(quad, dtype=np.float64)
    return q.mean(axis=-2), 0.5 * (q[..., 3, :] - q[..., 0, :]), 0.5 * (q[..., 1, :] - q[..., 0, :])


def square_quad(centre: np.ndarray, side: float) -> np.ndarray:
    """An axis-aligned square quad ``[4, 2]`` with the given centre ``[2]`` and side, in pixels."""
    cx, cy = np.asarray(centre, dtype=np.float64)
    h = 0.5 * side
    return np.array([[cx - h, cy - h], [cx - h, cy + h], [cx + h, cy + h], [cx + h, cy - h]])


def crop_window(
    quads: np.ndarray, usable: np.ndarray, mode: str = "robust", quantile: float = 0.5, margin: float = 1.0
) -> np.ndarray:
    """The unaligned crop window of a video: one quad for all its frames.

    Args:
        quads: ``[N, 4, 2]`` aligned quads of every frame in pixels (anything where ``usable`` is false).
        usable: ``[N]`` bool, frames whose quads count.
        mode: ``"robust"``: an axis-aligned square centred on the median quad centre, its side the
            ``quantile`` of the quad sides times ``margin``. ``"first_frame"``: the official rule, the aligned
            quad (rotation included) of the first usable frame.
        quantile: which quantile of the per-frame quad sides sets the side (0.5: the median).
        margin: factor on that side.

    Returns:
        ``[4, 2]`` corners in pixels.
    """
    usable = np.asarray(usable, dtype=bool)
    if not usable.any():
        raise ValueError("no usable frame to place the crop window on")
    quads = np.asarray(quads, dtype=np.float64)[usable]
    if mode == "first_frame":
        return quads[0]
    if mode != "robust":
        raise ValueError(f"unknown crop mode {mode!r}; use 'robust' or 'first_frame'")
    centre, x, _ = quad_axes(quads)
    side = 2.0 * np.quantile(np.linalg.norm(x, axis=-1), quantile) * margin
    return square_quad(np.median(centre, axis=0), side)


def quad_sampling_matrix(quad: np.ndarray, size: int) -> np.ndarray:
    """The affine map from output pixel coordinates of a ``size``-square image to frame pixel coordinates.

    Returns:
        ``[2, 3]`` float64 ``A`` with ``p = A @ (col, row, 1)`` (the ``WARP_INVERSE_MAP`` matrix of OpenCV).
    """
    c, x, y = quad_axes(quad)
    a = np.empty((2, 3))
    a[:, 0] = 2.0 * x / size
    a[:, 1] = 2.0 * y / size
    a[:, 2] = c + (1.0 / size - 1.0) * (x + y)
    return a


def warp_quad(image: np.ndarray, quad: np.ndarray, size: int, border: str = "reflect") -> np.ndarray:
    """Resample the quad of a frame into a ``size`` x ``size`` image, antialiased when shrinking.

    One interpolation per output: the region under the quad is first averaged over whole ``k x k`` pixel
    blocks (exact box filter, ``k`` = the integer part of the shrink factor), then blurred by the Gaussian
    scikit-image uses for the remaining factor ``f`` (``sigma = (f - 1) / 2``), then sampled bilinearly (also
    when enlarging, like the FFHQ script's PIL quad transform; bicubic costs 3x at 1024 px for little gain on
    frames that are upscaled anyway). Parts of the quad outside the frame follow ``border``.

    Args:
        image: ``[H, W, C]`` uint8 frame.
        quad: ``[4, 2]`` corners in frame pixels (module docstring).
        size: output side in pixels.
        border: ``"reflect"`` (mirror without repeating the edge pixel, like FFHQ's padding), ``"edge"``
            (repeat the edge pixel) or ``"constant"`` (black).

    Returns:
        ``[size, size, C]`` uint8.
    """
    a = quad_sampling_matrix(quad, size)
    shrink = float(np.linalg.norm(a[:, 0]))  # frame pixels per output pixel
    k = max(1, int(shrink))
    lo = np.floor(np.asarray(quad).min(axis=0)).astype(int) - 2 * k - int(3 * shrink)
    hi = np.ceil(np.asarray(quad).max(axis=0)).astype(int) + 2 * k + int(3 * shrink)
    height, width = image.shape[:2]
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], width), min(hi[1], height)
    if x1 - x0 < k or y1 - y0 < k:  # the quad lies entirely outside the frame
        return np.zeros((size, size) + image.shape[2:], dtype=image.dtype)
    roi = image[y0:y1, x0:x1]
    if k > 1:
        # Pad to whole k x k blocks (by the border rule), so the box filter is exact.
        pad_x, pad_y = -(x1 - x0) % k, -(y1 - y0) % k
        roi = cv2.copyMakeBorder(roi, 0, pad_y, 0, pad_x, BORDERS[border])
        roi = cv2.resize(roi, (roi.shape[1] // k, roi.shape[0] // k), interpolation=cv2.INTER_AREA)
    sigma = (shrink / k - 1.0) / 2.0
    if sigma > 0.1:
        roi = cv2.GaussianBlur(roi, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    # Frame pixel p = k * q + (k - 1) / 2 + (x0, y0) for pixel q of the shrunk region.
    a_roi = a.copy()
    a_roi[:, 2] -= (x0 + (k - 1) / 2.0, y0 + (k - 1) / 2.0)
    a_roi /= k
    return cv2.warpAffine(
        roi, a_roi, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=BORDERS[border]
    )


def quad_side(quad: np.ndarray) -> np.ndarray:
    """Side length of quads ``[..., 4, 2]`` in pixels, shape ``[...]``."""
    _, x, _ = quad_axes(quad)
    return 2.0 * np.linalg.norm(x, axis=-1)


def quad_angle_deg(quad: np.ndarray) -> np.ndarray:
    """Roll of quads ``[..., 4, 2]``: the angle of their x axis, counter-clockwise on screen, in degrees."""
    _, x, _ = quad_axes(quad)
    return np.degrees(np.arctan2(-x[..., 1], x[..., 0]))
