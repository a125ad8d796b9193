"""Pasting an edited face crop back into the full source frame (the official code has no paste-back).

The crop of a frame is the square ``crop_quad`` of that frame resampled to ``R x R`` pixels
(:func:`sg3pipe.faces.alignment.warp_quad`); its sampling matrix maps crop pixels to frame pixels. Paste-back
runs that map backwards: every frame pixel under the quad looks up the crop (and a face mask drawn in crop
pixels) at its crop position, and the crop replaces the frame where the mask says so. Frame pixels where the
warped mask is exactly 0 are returned untouched, bit for bit.

The mask is drawn from the 68 landmarks by default: landmarks are what the pipeline already has for every frame,
and a smooth feathered edge hides the seam. A face-parsing network, as STIT uses (rotemtzaban/STIT
``edit_video_stitching_tuning.py``), gives the mask instead when one is configured
(:mod:`sg3pipe.render.face_parsing`).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sg3pipe.faces.crop_transforms import quad_matrix

JAW = slice(0, 17)  # dlib points 0-16: the face outline from ear to ear, through the chin
BROWS = slice(17, 27)  # dlib points 17-26: both eyebrows
CHIN = 8
FOREHEAD = 0.3  # brows are raised by this fraction of the chin-to-brow distance (module docstring of face_mask)
MASK_CHUNK_PIXELS = 1 << 22  # frames x pixels of distance field evaluated at once: bounds memory
PASTE_CHUNK_PIXELS = 1 << 22  # frames x frame pixels under the quad resampled at once: bounds the float buffers


def crop_sampling_matrix(crop_quad: np.ndarray, size: int) -> np.ndarray:
    """The map from crop pixels to frame pixels, for one or many quads.

    The same matrix as :func:`sg3pipe.faces.alignment.quad_sampling_matrix` (the one ``warp_quad`` samples
    with), as ``[..., 3, 3]`` so that it broadcasts over frames and inverts with ``np.linalg.inv``: crop pixel
    ``(col, row)`` has unit coordinates ``((col, row) + 0.5) / size - 0.5``, which the quad maps to the frame.

    Args:
        crop_quad: ``[..., 4, 2]`` corners in frame pixels (sg3pipe.faces.alignment).
        size: crop side ``R`` in pixels.

    Returns:
        ``[..., 3, 3]`` float64 ``A`` with ``(x, y, 1) = A @ (col, row, 1)``.
    """
    to_unit = np.array([[1.0 / size, 0, 0.5 / size - 0.5], [0, 1.0 / size, 0.5 / size - 0.5], [0, 0, 1]])
    return quad_matrix(crop_quad) @ to_unit


def frame_to_crop(points: np.ndarray, crop_quad: np.ndarray, size: int) -> np.ndarray:
    """Frame pixel coordinates (e.g. the landmarks of ``frames.parquet``) as crop pixel coordinates.

    Args:
        points: ``[..., K, 2]`` ``(x, y)`` frame pixels (``[B, 68, 2]`` landmarks).
        crop_quad: ``[4, 2]`` or ``[..., 4, 2]`` (one per leading index of ``points``).
        size: crop side ``R`` in pixels.

    Returns:
        ``[..., K, 2]`` float64 crop pixels (pixel centre ``(col, row)`` at ``(col, row)``); NaN stays NaN.
    """
    inverse = np.linalg.inv(crop_sampling_matrix(crop_quad, size))[..., None, :, :]  # [..., 1, 3, 3]
    points = np.asarray(points, dtype=np.float64)
    return (inverse[..., :2, :2] @ points[..., None])[..., 0] + inverse[..., :2, 2]


def face_outline(landmarks: np.ndarray, forehead: float = FOREHEAD) -> np.ndarray:
    """The points whose convex hull is the face: the jaw line and the brows, raised to cover the forehead.

    dlib's 68 points stop at the brows, so a hull of the landmarks alone cuts the forehead off at brow height
    and an edit that changes the forehead (age: wrinkles) would end in a seam across it. The brows are moved
    up, along the chin-to-brow direction (so it follows a rolled head), by ``forehead`` times the chin-to-brow
    distance. By the rule of thirds the hairline sits about half that distance above the brows; 0.3 covers the
    lower forehead while staying below the hairline, where the hair of the source and the render would mix.

    Args:
        landmarks: ``[..., 68, 2]`` pixel coordinates.
        forehead: how far to raise the brows, as a fraction of the chin-to-brow distance.

    Returns:
        ``[..., 27, 2]`` float64: points 0-16 unchanged, then the 10 raised brow points.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    brows = lm[..., BROWS, :]
    up = brows.mean(axis=-2) - lm[..., CHIN, :]  # chin to brow centre: face height and "up"
    return np.concatenate([lm[..., JAW, :], brows + forehead * up[..., None, :]], axis=-2)


def _hulls(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convex hull of each point set ``[B, K, 2]`` as ``[B, K, 2]`` vertices in order, padded by repeating the
    last vertex (a zero-length edge changes no distance), and ``[B]`` bool: whether the set was finite."""
    finite = np.isfinite(points).all(axis=(1, 2))
    hulls = np.zeros(points.shape, dtype=np.float32)
    for i in np.flatnonzero(finite):  # a few dozen points per frame: negligible next to the distance field
        hull = cv2.convexHull(points[i].astype(np.float32))[:, 0]
        hulls[i, : len(hull)] = hull
        hulls[i, len(hull) :] = hull[-1]
    return hulls, finite


def _distance_to_hull(hulls: torch.Tensor, size: int) -> torch.Tensor:
    """Euclidean distance ``[B, size, size]`` from each pixel centre to the convex polygon ``hulls [B, E, 2]``
    (0 inside); exact, with no rasterisation, so dilation by ``d`` is a threshold at ``d``."""
    axis = torch.arange(size, dtype=torch.float32, device=hulls.device)
    py, px = (g.reshape(1, -1) for g in torch.meshgrid(axis, axis, indexing="ij"))
    nearest = torch.full((hulls.shape[0], size * size), float("inf"), device=hulls.device)
    left_of_all = torch.ones_like(nearest, dtype=torch.bool)
    right_of_all = torch.ones_like(left_of_all)
    for a, b in zip(hulls.unbind(1), hulls.roll(-1, dims=1).unbind(1), strict=True):
        ax, ay, ex, ey = a[:, :1], a[:, 1:], (b - a)[:, :1], (b - a)[:, 1:]
        dx, dy = px - ax, py - ay
        t = ((dx * ex + dy * ey) / (ex * ex + ey * ey).clamp_min(1e-12)).clamp(0, 1)
        nearest = torch.minimum(nearest, torch.hypot(dx - t * ex, dy - t * ey))
        cross = ex * dy - ey * dx
        left_of_all &= cross >= 0
        right_of_all &= cross <= 0
    # Inside a convex polygon the point is on the same side of every edge (either winding order).
    inside = left_of_all | right_of_all
    return torch.where(inside, torch.zeros_like(nearest), nearest).reshape(-1, size, size)


def face_mask(
    landmarks_crop: np.ndarray,
    size: int,
    dilate_px: float,
    feather_px: float,
    forehead: float = FOREHEAD,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """A soft face mask in crop pixels from 68 landmarks.

    The face is the convex hull of :func:`face_outline` (jaw line 0-16 and the brows 17-26 raised to cover the
    forehead). The hull is dilated by ``dilate_px`` (a disk: every pixel within that distance of it is 1) and
    then feathered outwards: over the next ``feather_px`` the mask falls from 1 to 0 along a smoothstep
    ``1 - (3 s^2 - 2 s^3)``, ``s`` the distance past the dilated edge over ``feather_px``, so the mask has no
    kink at either end of the ramp and is exactly 0 from ``dilate_px + feather_px`` on. Distances are exact
    Euclidean distances to the hull polygon, computed for all frames at once.

    Args:
        landmarks_crop: ``[B, 68, 2]`` landmarks in crop pixels (:func:`frame_to_crop`). A frame with any
            non-finite landmark (a failed detection) gets an all-zero mask: nothing is pasted there.
        size: crop side ``R`` in pixels.
        dilate_px: growth of the hull in crop pixels (>= 0).
        feather_px: width of the falloff in crop pixels (>= 0; 0 gives a hard mask).
        forehead: see :func:`face_outline`.
        device: where to compute the distance field.

    Returns:
        ``[B, size, size]`` float32 in [0, 1].
    """
    landmarks_crop = np.asarray(landmarks_crop, dtype=np.float64)
    if landmarks_crop.ndim != 3 or landmarks_crop.shape[1:] != (68, 2):
        raise ValueError(f"landmarks_crop: expected shape [B, 68, 2], got {list(landmarks_crop.shape)}")
    if dilate_px < 0 or feather_px < 0:
        raise ValueError(f"dilate_px and feather_px must be >= 0, got {dilate_px} and {feather_px}")
    hulls, finite = _hulls(face_outline(landmarks_crop, forehead))
    hulls = torch.from_numpy(hulls).to(device)
    masks = np.zeros((len(hulls), size, size), dtype=np.float32)
    step = max(1, MASK_CHUNK_PIXELS // (size * size))
    for start in range(0, len(hulls), step):
        distance = _distance_to_hull(hulls[start : start + step], size)
        masks[start : start + step] = feather(distance, dilate_px, feather_px).cpu().numpy()
    masks[~finite] = 0
    return masks


def feather(distance: torch.Tensor, dilate_px: float, feather_px: float) -> torch.Tensor:
    """A soft mask from the distance (pixels, any shape) to a face region: 1 up to ``dilate_px``, then a
    smoothstep ``1 - (3 s^2 - 2 s^3)`` down to exactly 0 at ``dilate_px + feather_px`` (a hard edge when
    ``feather_px`` is 0). float32, the shape of ``distance``."""
    if dilate_px < 0 or feather_px < 0:
        raise ValueError(f"dilate_px and feather_px must be >= 0, got {dilate_px} and {feather_px}")
    if feather_px == 0:
        return (distance <= dilate_px).float()
    s = ((distance - dilate_px) / feather_px).clamp(0, 1)
    return (1 - s * s * (3 - 2 * s)).float()  # s = 1 gives exactly 0


def _pixel_box(quads: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the frame pixels any quad touches (half-open, clipped to the frame)."""
    lo = np.floor(np.nanmin(quads.reshape(-1, 2), axis=0)).astype(int) - 1
    hi = np.ceil(np.nanmax(quads.reshape(-1, 2), axis=0)).astype(int) + 2
    return max(lo[0], 0), max(lo[1], 0), min(hi[0], width), min(hi[1], height)


def paste_back(
    frames: np.ndarray,
    crops: np.ndarray,
    crop_quad: np.ndarray,
    masks: np.ndarray,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Warp edited crops back into their frames and blend them in under the masks.

    Each frame pixel ``p`` under the quad reads the crop at ``A^-1 p`` (``A`` = :func:`crop_sampling_matrix`,
    the inverse of the map ``warp_quad`` cut the crop with), bilinearly, with everything outside the crop
    transparent. Crop and mask are resampled premultiplied, ``warp(mask * crop)`` and ``warp(mask)``, so the
    transparent outside does not bleed black into the crop's edge and masked-out crop pixels do not bleed
    into the face; the blend is then ``out = warp(mask * crop) + (1 - warp(mask)) * frame``, which is
    ``mask * crop + (1 - mask) * frame`` wherever the mask is locally constant. Where ``warp(mask)`` is exactly 0
    the output is the source pixel, unrounded.

    Args:
        frames: ``[B, H, W, 3]`` uint8 source frames.
        crops: ``[B, R, R, 3]`` uint8 edited crops (renders aligned with the crop window).
        crop_quad: ``[4, 2]`` (one crop window for the video) or ``[B, 4, 2]``, in frame pixels.
        masks: ``[B, R, R]`` float in [0, 1], in crop pixels (:func:`face_mask`).
        device: where to resample; only the box of frame pixels under the quads is processed.

    Returns:
        ``[B, H, W, 3]`` uint8, a new array.
    """
    frames, crops = np.asarray(frames), np.asarray(crops)
    masks = np.asarray(masks, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected [B, H, W, 3] uint8, got {list(frames.shape)} {frames.dtype}")
    b, height, width, _ = frames.shape
    size = crops.shape[1] if crops.ndim == 4 else -1
    if crops.shape != (b, size, size, 3) or crops.dtype != np.uint8:
        raise ValueError(f"crops: expected [{b}, R, R, 3] uint8, got {list(crops.shape)} {crops.dtype}")
    if masks.shape != (b, size, size):
        raise ValueError(f"masks: expected [{b}, {size}, {size}], got {list(masks.shape)}")
    quads = np.broadcast_to(np.asarray(crop_quad, dtype=np.float64), (b, 4, 2))
    out = frames.copy()
    x0, y0, x1, y1 = _pixel_box(quads, height, width)
    if x1 <= x0 or y1 <= y0:  # the quads lie outside the frames
        return out

    # Frame pixel coordinates of the box; the float buffers below hold a few frames' boxes at a time.
    xs = torch.arange(x0, x1, dtype=torch.float64, device=device)
    ys = torch.arange(y0, y1, dtype=torch.float64, device=device)
    py, px = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([px, py, torch.ones_like(px)], dim=-1)  # [h, w, 3]
    step = max(1, PASTE_CHUNK_PIXELS // ((x1 - x0) * (y1 - y0)))
    for start in range(0, b, step):
        part = slice(start, start + step)
        source = frames[part, y0:y1, x0:x1]
        out[part, y0:y1, x0:x1] = _blend(source, crops[part], quads[part], masks[part], points, device)
    return out


def _blend(
    source: np.ndarray,
    crops: np.ndarray,
    quads: np.ndarray,
    masks: np.ndarray,
    points: torch.Tensor,
    device: str | torch.device,
) -> np.ndarray:
    """:func:`paste_back` on the box of frame pixels ``points [h, w, 3]`` (``(x, y, 1)``): the box of each frame
    ``source [B, h, w, 3]`` uint8 with its crop blended in, ``[B, h, w, 3]`` uint8."""
    size = crops.shape[1]
    # Crop pixel coordinates of the frame pixels in the box, as grid_sample's [-1, 1] (pixel edges at +-1).
    to_crop = torch.from_numpy(np.linalg.inv(crop_sampling_matrix(quads, size))).to(device)  # [B, 3, 3]
    crop_xy = torch.einsum("bij,hwj->bhwi", to_crop[:, :2], points)
    grid = ((2 * crop_xy + 1) / size - 1).float()

    alpha = torch.from_numpy(masks).to(device)[:, None]  # [B, 1, R, R]
    colour = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float()
    warped = F.grid_sample(
        torch.cat([colour * alpha, alpha], dim=1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    warped_alpha = warped[:, 3:]
    source = torch.from_numpy(source).to(device).permute(0, 3, 1, 2)
    blended = (warped[:, :3] + (1 - warped_alpha) * source.float()).round().clamp(0, 255).to(torch.uint8)
    region = torch.where(warped_alpha > 0, blended, source)
    return region.permute(0, 2, 3, 1).cpu().numpy()
