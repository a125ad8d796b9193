"""Clips with several faces at once, with exact per-face ground truth: for following faces that cross and leave.

**Synthetic faces.** Each face is a one-face synthetic clip (:func:`sg3pipe.synth.clips.clip_params`: its own
identity, blinks, smile and head roll) whose path through the frame is set by a *motion script* instead: a few
keyframes of ``(tx, ty, scale)`` joined by smooth steps, plus a little of the clip's own wander. The script
``"cross_exit"`` has faces 0 and 1 side by side swap places, face 1 (the larger, so nearer) passing in front
of face 0 and hiding it; then face 0 leaves the frame on the right and comes back. A third face, in the upper
row, crosses above them, leaves on the left and comes back.

A frame is composited from one render per face: each face is rendered (:func:`sg3pipe.synth.renderer.render`,
exact under any similarity) only on the square crop of the frame around its head, and pasted with a soft
elliptical mask around head, hair and neck, farther (smaller) faces first. The faces' background parameters
are the frame's background colour, so what the mask lets through around the hair blends into the frame.

**Real faces.** :func:`two_photo_frames` films the astronaut (scikit-image) and Grace Hopper (matplotlib)
side by side with the moving camera of :mod:`sg3pipe.synth.photo_clip`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import cv2
import matplotlib.cbook
import numpy as np
import torch
from PIL import Image
from skimage import data

from sg3pipe.io.tables import write_table
from sg3pipe.pixels import to_uint8
from sg3pipe.provenance import provenance
from sg3pipe.synth.clips import ClipSpec, clip_params
from sg3pipe.synth.params import PARAM_INDEX, POSE_NAMES, POSE_SLICE, column, with_values
from sg3pipe.synth.photo_clip import camera_path, photo_landmarks, render_frames
from sg3pipe.synth.renderer import FACE_Y0, pixel_landmarks, pose_matrices, render
from sg3pipe.transforms import make_transform, pixel_to_unit, unit_to_pixel
from sg3pipe.video.writer import write_video

BACKGROUND = (0.45, 0.5, 0.55)  # frame background and every face's background parameters (RGB in [0, 1])
# The head mask: an ellipse in canonical units (aligned-face widths) around the face's FACE_Y0 line, holding
# the hair of any parameters (half-width at most 0.36, top at most 0.46 above FACE_Y0) and the neck.
MASK_HALF_WIDTH = 0.37
MASK_TOP = 0.47
MASK_BOTTOM = 0.45
MASK_EDGE_PX = 2.0  # width of the mask's soft edge, in frame pixels
WANDER = 0.25  # fraction of a one-face clip's translation wander added to the motion script
FRAME_BATCH = 25  # frames rendered at once, per face

# Motion scripts: per face, keyframes ``(time as a fraction of the clip, tx, ty, scale)`` (tx, ty in frame
# widths from the frame centre; scale = FFHQ quad side in frame widths). A face at |tx| >= 0.75 is out of view.
MOTIONS: dict[str, tuple[tuple[tuple[float, float, float, float], ...], ...]] = {
    "cross_exit": (
        # Face 0: left, crosses to the right behind face 1, leaves on the right and comes back.
        ((0.0, -0.24, 0.2, 0.38), (0.12, -0.24, 0.2, 0.38), (0.42, 0.24, 0.2, 0.38), (0.55, 0.24, 0.2, 0.38),
         (0.65, 0.8, 0.2, 0.38), (0.75, 0.8, 0.2, 0.38), (0.86, 0.24, 0.2, 0.38), (1.0, 0.24, 0.2, 0.38)),
        # Face 1: right, crosses to the left in front of face 0.
        ((0.0, 0.24, 0.2, 0.42), (0.12, 0.24, 0.2, 0.42), (0.42, -0.24, 0.2, 0.42), (1.0, -0.22, 0.2, 0.42)),
        # Face 2: upper row, left to right, back, out on the left and in again.
        ((0.0, -0.22, -0.22, 0.38), (0.3, 0.22, -0.22, 0.38), (0.5, -0.22, -0.22, 0.38),
         (0.6, -0.8, -0.22, 0.38), (0.72, -0.8, -0.22, 0.38), (0.84, -0.2, -0.22, 0.38),
         (1.0, -0.2, -0.22, 0.38)),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class MultiFaceSpec:
    """Everything a synthetic multi-face clip is made from."""

    seed: int  # identities, expressions, head roll and wander (face i is clip_params of seed 16 * seed + i)
    seconds: float = 3.0  # duration
    fps: float = 25.0  # frame rate, frames per second
    resolution: int = 384  # frame width and height in pixels
    faces: int = 2  # number of faces (at most the motion script's)
    motion: str = "cross_exit"  # key of MOTIONS

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))


def _keyframe_path(keys: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Values ``[T, C]`` at clip fractions ``t`` ``[T]`` of keyframes ``[K, 1 + C]``, smoothstep between keys."""
    i = np.clip(np.searchsorted(keys[:, 0], t, side="right") - 1, 0, len(keys) - 2)
    u = np.clip((t - keys[i, 0]) / (keys[i + 1, 0] - keys[i, 0]), 0.0, 1.0)
    u = u * u * (3 - 2 * u)
    return keys[i, 1:] + u[:, None] * (keys[i + 1, 1:] - keys[i, 1:])


def multi_face_params(spec: MultiFaceSpec) -> torch.Tensor:
    """Per-face, per-frame renderer parameters of a clip, pose in frame coordinates.

    Returns:
        ``[spec.faces, spec.frames, NUM_PARAMS]`` float32.
    """
    script = MOTIONS[spec.motion]
    if not 1 <= spec.faces <= len(script):
        raise ValueError(f"motion {spec.motion!r} scripts 1 to {len(script)} faces, got faces={spec.faces}")
    t = np.arange(spec.frames) / max(spec.frames - 1, 1)
    faces = []
    for i in range(spec.faces):
        one = ClipSpec(seed=16 * spec.seed + i, seconds=spec.seconds, fps=spec.fps, resolution=spec.resolution)
        params = clip_params(one)
        tx, ty, scale = _keyframe_path(np.asarray(script[i], dtype=np.float64), t).T
        values = {  # the script plus a little of the one-face clip's own motion
            "tx": tx + WANDER * column(params, "tx").double().numpy(),
            "ty": ty + WANDER * column(params, "ty").double().numpy(),
            "scale": scale * column(params, "scale").double().numpy() / one.scale,
            **{f"bg_{c}": BACKGROUND[k] for k, c in enumerate(("red", "green", "blue"))},
        }
        faces.append(with_values(params, **{k: torch.as_tensor(v, dtype=torch.float32) for k, v in values.items()}))
    return torch.stack(faces)


def head_alpha(points: np.ndarray, matrices: np.ndarray, resolution: int) -> np.ndarray:
    """Coverage in [0, 1] of faces' head masks at frame pixel points.

    Args:
        points: ``[N, P, 2]`` ``(x, y)`` frame pixel coordinates.
        matrices: ``[N, 3, 3]`` the faces' content-moving poses in frame unit coordinates (``pose_matrices``).
        resolution: frame width in pixels.

    Returns:
        ``[N, P]`` float64: 1 inside the mask, 0 outside, a ``MASK_EDGE_PX``-wide ramp across its edge.
    """
    canonical = np.einsum("nij,npj->npi", np.linalg.inv(matrices)[:, :2, :2], pixel_to_unit(points, resolution))
    canonical += np.linalg.inv(matrices)[:, None, :2, 2]
    dy = canonical[..., 1] - FACE_Y0
    rho = np.hypot(canonical[..., 0] / MASK_HALF_WIDTH, dy / np.where(dy < 0, MASK_TOP, MASK_BOTTOM))
    scale_px = np.sqrt(np.linalg.det(matrices[:, :2, :2]))[:, None] * resolution * MASK_HALF_WIDTH
    return np.clip((1 - rho) * scale_px / MASK_EDGE_PX + 0.5, 0.0, 1.0)


def _crop_geometry(params: torch.Tensor, resolution: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Side, top-left pixel ``[T, 2]`` and frame-to-crop unit transforms ``[T, 3, 3]`` of one face's crops."""
    reach = max(MASK_HALF_WIDTH, MASK_TOP - FACE_Y0, MASK_BOTTOM + FACE_Y0)  # mask radius around the pose origin
    scale = column(params, "scale").double().numpy()
    side = 2 * int(np.ceil(reach * scale.max() * resolution)) + 4
    centre = unit_to_pixel(torch.stack([column(params, "tx"), column(params, "ty")], -1).double().numpy(), resolution)
    corner = np.round(centre).astype(np.int64) - side // 2
    to_crop = np.zeros((len(params), 3, 3))
    to_crop[:, 0, 0] = to_crop[:, 1, 1] = resolution / side
    to_crop[:, :2, 2] = (resolution / 2 - corner) / side - 0.5
    to_crop[:, 2, 2] = 1.0
    return side, corner, to_crop


def composite_frames(params: torch.Tensor, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Render several faces into shared frames.

    Args:
        params: ``[F, T, NUM_PARAMS]`` per face and frame, poses in frame coordinates.
        resolution: frame side in pixels.

    Returns:
        frames ``[T, resolution, resolution, 3]`` uint8 RGB, and ``uncovered`` ``[F, T]`` float64: the
        fraction of each face's 68 landmarks inside the frame and not under a nearer face's mask.
    """
    n_faces, n_frames = params.shape[:2]
    canvas = np.empty((n_frames, resolution, resolution, 3), np.float32)  # RGB in [0, 1]
    canvas[:] = BACKGROUND
    matrices = np.stack([pose_matrices(p).numpy() for p in params])  # [F, T, 3, 3]
    landmarks = np.stack([pixel_landmarks(p, resolution).double().numpy() for p in params])  # [F, T, 68, 2]
    scale = params[:, :, PARAM_INDEX["scale"]].double().numpy()
    uncovered = np.all((landmarks >= 0) & (landmarks <= resolution - 1), axis=-1).astype(np.float64)
    # Farther (smaller) faces first; a face's landmarks are covered by every face painted after it.
    order = np.argsort(scale, axis=0, kind="stable")  # [F, T]
    for rank in range(n_faces):
        for nearer in range(rank + 1, n_faces):
            back, front = order[rank], order[nearer]
            frames = np.arange(n_frames)
            alpha = head_alpha(landmarks[back, frames], matrices[front, frames], resolution)
            uncovered[back, frames] *= alpha < 0.5
    for rank in range(n_faces):
        for face in range(n_faces):
            frames = np.flatnonzero(order[rank] == face)
            _paint(canvas, params[face], matrices[face], frames, resolution)
    return to_uint8(torch.from_numpy(canvas).permute(0, 3, 1, 2) * 2 - 1), uncovered.mean(axis=-1)


def _paint(canvas: np.ndarray, params: torch.Tensor, matrices: np.ndarray, frames: np.ndarray, resolution: int):
    """Composite one face's crops onto ``canvas`` ``[T, H, W, 3]`` at ``frames`` (in place)."""
    side, corner, to_crop = _crop_geometry(params, resolution)
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="xy"), axis=-1).reshape(-1, 2)
    for start in range(0, len(frames), FRAME_BATCH):
        batch = frames[start : start + FRAME_BATCH]
        crops = (render(params[batch], side, transform=to_crop[batch]).images.permute(0, 2, 3, 1).numpy() + 1) / 2
        alpha = head_alpha(grid[None] + corner[batch, None], matrices[batch], resolution)
        for crop, a, (x0, y0), t in zip(crops, alpha.reshape(-1, side, side, 1), corner[batch], batch, strict=True):
            fx0, fy0 = max(x0, 0), max(y0, 0)
            fx1, fy1 = min(x0 + side, resolution), min(y0 + side, resolution)
            if fx0 >= fx1 or fy0 >= fy1:
                continue
            sy, sx = slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)
            region = canvas[t, fy0:fy1, fx0:fx1]
            region += a[sy, sx] * (crop[sy, sx] - region)


def multi_face_clip(spec: MultiFaceSpec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render a multi-face clip in memory.

    Returns:
        frames ``[T, R, R, 3]`` uint8 RGB, and the ground-truth columns of :func:`write_multi_face_clip`.
    """
    params = multi_face_params(spec)
    frames, uncovered = composite_frames(params, spec.resolution)
    n_faces, n_frames = params.shape[:2]
    pose = params[:, :, POSE_SLICE].double().numpy()  # POSE_NAMES: angle_deg, tx, ty, scale
    centre = unit_to_pixel(pose[..., 1:3], spec.resolution)
    inside = np.all((centre >= 0) & (centre <= spec.resolution - 1), axis=-1)
    landmarks = np.stack([pixel_landmarks(p, spec.resolution).double().numpy() for p in params])
    truth = {
        "face": np.repeat(np.arange(n_faces), n_frames),
        "frame": np.tile(np.arange(n_frames), n_faces),
        "time_s": np.tile(np.arange(n_frames) / spec.fps, n_faces),
        **{name: pose[..., k].reshape(-1) for k, name in enumerate(POSE_NAMES)},
        "landmarks": landmarks.reshape(-1, 68, 2),
        "uncovered": uncovered.reshape(-1),
        "visible": (inside & (uncovered >= 0.5)).reshape(-1),
    }
    return frames, truth


def write_multi_face_clip(video_path: str | os.PathLike, truth_path: str | os.PathLike, spec: MultiFaceSpec) -> None:
    """Render a multi-face clip to an h264 mp4 and write its ground truth Parquet.

    One row per (face, frame): ``face``, ``frame``, ``time_s``, the face's pose ``angle_deg, tx, ty, scale``
    in frame coordinates (:mod:`sg3pipe.transforms`), ``landmarks`` (68 x 2 frame pixels, also where covered or
    outside the frame), ``uncovered`` (fraction of the landmarks inside the frame and not under a nearer face)
    and ``visible`` (the face's centre is inside the frame and at least half its landmarks are uncovered).
    """
    frames, truth = multi_face_clip(spec)
    write_video(video_path, frames, spec.fps, codec="h264")
    metadata = {
        "provenance": provenance(config=dataclasses.asdict(spec)),
        "shapes": {"landmarks": [68, 2]},
        "fps": spec.fps,
        "resolution": spec.resolution,
    }
    write_table(truth_path, truth, metadata)


def two_photos() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut and Grace Hopper side by side on one square canvas, faces of about the same size.

    Returns:
        canvas ``[512, 512, 3]`` uint8 RGB, and each face's 68 landmarks ``[2, 68, 2]`` in canvas pixels
        (astronaut first).
    """
    astronaut = np.ascontiguousarray(data.astronaut()[:, 94:350])  # 256 columns around the face
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    hopper = cv2.resize(hopper, (256, 300), interpolation=cv2.INTER_AREA)  # her face is twice the astronaut's
    canvas = np.full((512, 512, 3), 40, np.uint8)
    canvas[:, :256] = astronaut
    canvas[:300, 256:] = hopper
    landmarks = np.stack([photo_landmarks(astronaut), photo_landmarks(hopper) + [256.0, 0.0]])
    return canvas, landmarks


def two_photo_frames(n_frames: int, fps: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """The two-photo canvas filmed by :func:`sg3pipe.synth.photo_clip.camera_path`'s camera.

    Returns:
        frames ``[n_frames, 512, 512, 3]`` uint8 RGB, and the truth landmarks ``[2, n_frames, 68, 2]`` in frame
        pixels (astronaut first).
    """
    canvas, still = two_photos()
    cam = camera_path(n_frames, fps)
    matrices = make_transform(cam["angle_deg"], cam["tx"], cam["ty"], cam["scale"])
    unit = pixel_to_unit(still, 512)
    moved = np.einsum("nij,fkj->fnki", matrices[:, :2, :2], unit) + matrices[None, :, None, :2, 2]
    return np.stack(list(render_frames(canvas, matrices, 512))), unit_to_pixel(moved, 512)
