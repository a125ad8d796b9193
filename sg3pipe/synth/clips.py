"""Synthetic face videos with exact per-frame ground truth (pose, parameters, landmarks, labels).

A clip is one random identity (:func:`sg3pipe.synth.params.sample_params`) moved by a smooth random
similarity (rotation within +-15 degrees, translation, slight zoom around ``scale``) while it blinks and
starts to smile. Everything follows from a :class:`ClipSpec`, so a clip is rebuilt bit for bit from its seed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from sg3pipe.io.tables import write_table
from sg3pipe.pixels import to_uint8
from sg3pipe.provenance import provenance
from sg3pipe.synth.params import NUM_PARAMS, PARAM_NAMES, POSE_NAMES, POSE_SLICE, sample_params, with_values
from sg3pipe.synth.renderer import attribute_labels, pixel_landmarks, pose_matrices, render
from sg3pipe.video.writer import write_video

log = logging.getLogger(__name__)

MAX_ANGLE = 15.0  # degrees; the head rotation never exceeds this
BLINK_SECONDS = 0.07  # half-width (to 1/e) of a blink's closing curve, in seconds: 2-3 frames closed at 25 fps
FRAME_BATCH = 25  # frames rendered at once


@dataclass(frozen=True)
class ClipSpec:
    """Everything a synthetic clip is made from."""

    seed: int  # identity, motion, smile onset and blink times
    seconds: float = 4.0  # duration
    fps: float = 25.0  # frame rate, frames per second
    resolution: int = 256  # frame width and height in pixels
    scale: float = 1 / 3  # mean size of the aligned face square, in frame widths
    glasses: float | None = None  # force the glasses parameter (0 off, 1 on); None keeps the sampled value

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _wander(rng: np.random.Generator, time_s: np.ndarray, amplitude: float) -> np.ndarray:
    """A smooth random curve: two sinusoids (0.1-0.6 Hz, random phases) with peak at most ``amplitude``."""
    freqs = rng.uniform(0.1, 0.6, size=2)
    phases = rng.uniform(0, 2 * np.pi, size=2)
    weights = rng.uniform(0.4, 1.0, size=2)
    curve = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * time_s + phases[:, None])).sum(0)
    return amplitude * curve / weights.sum()


def clip_params(spec: ClipSpec) -> torch.Tensor:
    """Per-frame face parameters of a clip, pose included.

    The identity is face 0 of ``sample_params(1, spec.seed)``; over the clip the head wanders (angle within
    +-MAX_ANGLE, shifts up to 0.12 / 0.08 frame widths, zoom within 8% of ``spec.scale``), the face starts
    neutral with open eyes, smiles (and opens the mouth) from a random moment between a third and half of
    the clip, and blinks two or three times (fewer in clips under 2 s).

    Returns:
        ``[spec.frames, NUM_PARAMS]`` float32.
    """
    rng = np.random.default_rng(spec.seed)
    time_s = np.arange(spec.frames) / spec.fps
    onset = rng.uniform(spec.seconds / 3, spec.seconds / 2)
    smile = 0.05 + 0.85 * _smoothstep((time_s - onset) / 0.6)
    mouth_open = 0.05 + 0.6 * _smoothstep((time_s - onset - 0.2) / 0.6)
    slots = np.arange(0.5, spec.seconds - 0.3, 0.8)  # blinks at least 0.4 s apart: slots 0.8 s apart, jittered
    count = min(len(slots), rng.integers(2, 4))
    blinks = rng.choice(slots, size=count, replace=False) + rng.uniform(-0.2, 0.2, size=count)
    blink = np.exp(-(((time_s[:, None] - blinks[None]) / BLINK_SECONDS) ** 2)).sum(1)
    values = {
        "smile": smile,
        "mouth_open": mouth_open,
        "eye_openness": 0.9 * (1 - np.clip(blink, 0, 1)),
        "brow_raise": 0.2 + 0.15 * smile,
        "angle_deg": np.clip(_wander(rng, time_s, 12.0), -MAX_ANGLE, MAX_ANGLE),
        "tx": _wander(rng, time_s, 0.12),
        "ty": _wander(rng, time_s, 0.08),
        "scale": spec.scale * (1 + _wander(rng, time_s, 0.08)),
    }
    if spec.glasses is not None:
        values["glasses"] = np.full(spec.frames, spec.glasses)
    identity = sample_params(1, spec.seed).expand(spec.frames, -1)
    return with_values(identity, **{k: torch.as_tensor(v, dtype=torch.float32) for k, v in values.items()})


def render_frames(params: torch.Tensor, resolution: int, batch: int = FRAME_BATCH) -> Iterator[np.ndarray]:
    """Render ``params`` ``[T, NUM_PARAMS]`` in batches: yields ``[B, H, W, 3]`` uint8 RGB frames."""
    for i in range(0, len(params), batch):
        images = render(params[i : i + batch], resolution).images
        yield to_uint8(images)


def truth_table(spec: ClipSpec, params: torch.Tensor) -> dict[str, np.ndarray]:
    """The ground-truth columns of a clip of ``params`` ``[T, NUM_PARAMS]``, one row per frame (see write_clip)."""
    matrices = pose_matrices(params).numpy()
    pose = params[:, POSE_SLICE].double().numpy()
    columns = {
        "frame": np.arange(len(params), dtype=np.int64),
        "time_s": np.arange(len(params)) / spec.fps,
        **{name: pose[:, i] for i, name in enumerate(POSE_NAMES)},
        "transform": matrices.reshape(len(params), 9),
        "params": params.numpy(),
        "landmarks": pixel_landmarks(params, spec.resolution).numpy(),
    }
    columns.update({name: value.numpy() for name, value in attribute_labels(params).items()})
    return columns


def write_clip(video_path: str | os.PathLike, truth_path: str | os.PathLike, spec: ClipSpec) -> None:
    """Render a clip to an h264 mp4 and write its ground truth Parquet, one row per frame.

    Ground-truth columns: ``frame``, ``time_s``, the face pose ``angle_deg, tx, ty, scale`` (convention of
    :mod:`sg3pipe.transforms`), ``transform`` (the 3x3 content-moving matrix, 9 floats row-major),
    ``params`` (``NUM_PARAMS`` floats, layout ``PARAM_NAMES``), ``landmarks`` (68 x 2 pixel coordinates in the
    frame) and one bool column per attribute label. Metadata: provenance (with the spec), shapes, parameter
    names, fps and resolution.
    """
    params = clip_params(spec)
    log.info("rendering %d frames of %s at %d px", spec.frames, video_path, spec.resolution)
    frames = tqdm(render_frames(params, spec.resolution), total=-(-spec.frames // FRAME_BATCH), desc=str(video_path))
    written = write_video(video_path, frames, spec.fps)
    metadata = {
        "provenance": provenance(config=dataclasses.asdict(spec)),
        "shapes": {"transform": [3, 3], "params": [NUM_PARAMS], "landmarks": [68, 2]},
        "param_names": PARAM_NAMES,
        "fps": spec.fps,
        "resolution": spec.resolution,
    }
    write_table(truth_path, truth_table(spec, params), metadata)
    log.info("wrote %d frames to %s and their ground truth to %s", written, video_path, truth_path)
