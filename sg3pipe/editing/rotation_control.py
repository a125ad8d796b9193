"""The paper's rotation-control analysis (section 2.1): which rows of W+ carry a face's rotation and translation.

For ``n`` seeded base latents ``w`` (every row the same, as the mapping gives them) and ``k`` other latents each,
three experiments swap rows of ``w`` for the other latent's:

- ``w0``: row 0 only;
- ``w1``: row 1 only;
- ``rest``: every row but 0 and 1, the paper's ``G((w0, w1, w*, ..., w*))``.

Each variant's image is compared with its base image three ways:

- input pose: the rotation (degrees) and translation (image widths) of the Fourier features, which the input
  layer's affine map reads from row 0 (exact, from the network; zero change when row 0 is kept);
- landmark pose: the roll (degrees) and the centre shift (image widths) of the FFHQ square of the front half's
  68 landmarks (dlib's detector and shape predictor on renders upsampled to :data:`LANDMARK_SIDE` pixels; NaN
  where no face is found);
- identity: cosine similarity of dlib face descriptors to the base image (1: the same image).

The paper's reading: ``w0`` moves the face (rotation and translation), ``w1`` turns it a little and changes its
shape, and the other rows change who it is but not where it is.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import torch

from sg3pipe.faces.alignment import ffhq_quad, quad_angle_deg
from sg3pipe.metrics.identity import IdentityModel, descriptor_cosine
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.pixels import tile, to_uint8

EXPERIMENTS = ("w0", "w1", "rest")
LANDMARK_SIDE = 256  # renders are upsampled to this side (pixels) for dlib's detector (faces from ~80 px)


def swap_rows(w_base: torch.Tensor, w_other: torch.Tensor, experiment: str) -> torch.Tensor:
    """The variant latents of one experiment.

    Args:
        w_base: ``[N, L, C]`` base latents.
        w_other: ``[N, K, C]`` other latents, ``K`` per base.
        experiment: one of :data:`EXPERIMENTS`.

    Returns:
        ``[N, K, L, C]``: ``w_base`` with rows 0 (``w0``), 1 (``w1``) or 2.. (``rest``) from ``w_other``.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; use one of {EXPERIMENTS}")
    rows = {"w0": slice(0, 1), "w1": slice(1, 2), "rest": slice(2, None)}[experiment]
    out = w_base.unsqueeze(1).repeat(1, w_other.shape[1], 1, 1)
    out[:, :, rows] = w_other.unsqueeze(2)
    return out


def input_pose(G: Generator, ws: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The pose the input layer gives the Fourier features of ``ws [M, L, C]``: angle ``[M]`` in degrees and
    translation ``[M, 2]`` in image widths (read from row 0 by the layer's affine map)."""
    with torch.no_grad():
        t = G.synthesis.input.style(ws[:, 0]).double().cpu().numpy()
    return np.degrees(np.arctan2(t[:, 1], t[:, 0])), t[:, 2:]  # sg3pipe.transforms' units: image widths


def landmark_pose(images: np.ndarray, detector, predictor) -> tuple[np.ndarray, np.ndarray]:
    """Roll ``[M]`` (degrees) and centre ``[M, 2]`` (image widths from the top-left) of the FFHQ square of the
    landmarks on ``images [M, S, S, 3]`` uint8 RGB; NaN where the detector finds no face (the largest is used)."""
    angles, centres = np.full(len(images), np.nan), np.full((len(images), 2), np.nan)
    for i, image in enumerate(images):
        big = cv2.resize(image, (LANDMARK_SIDE, LANDMARK_SIDE), interpolation=cv2.INTER_CUBIC)
        boxes = detector(big).boxes
        if len(boxes) == 0:
            continue
        largest = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
        quad = ffhq_quad(predictor(big, largest[None])[0])
        angles[i] = quad_angle_deg(quad)
        centres[i] = quad.mean(axis=0) / LANDMARK_SIDE
    return angles, centres


def _synthesize(G: Generator, ws: torch.Tensor, batch: int) -> np.ndarray:
    """Images of ``ws [M, L, C]`` as ``[M, S, S, 3]`` uint8, ``batch`` at a time."""
    device = G.mapping.w_avg.device
    with torch.no_grad():
        return np.concatenate([to_uint8(G.synthesis(ws[i : i + batch].to(device))) for i in range(0, len(ws), batch)])


def rotation_control(
    G: Generator,
    detector,
    predictor,
    identity: IdentityModel,
    n: int = 8,
    k: int = 4,
    seed: int = 0,
    truncation_psi: float = 0.7,
    batch: int = 32,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Run the three experiments of the module docstring.

    Args:
        G: the generator (its device is used).
        detector, predictor: the front half's face detector and landmark predictor
            (:func:`sg3pipe.faces.landmarks.make_detector`, :func:`~sg3pipe.faces.landmarks.make_predictor`).
        identity: dlib's face-recognition model.
        n: base latents; k: variants per base and experiment.
        seed: seeds the ``z`` of the bases and the others.
        truncation_psi: of every latent.
        batch: images per synthesis call.

    Returns:
        ``(table, grids)``: one row per variant (``experiment``, ``sample``, ``variant``, ``input_angle_deg``,
        ``input_shift``, ``landmark_angle_deg``, ``landmark_shift``, ``identity``: changes against the base, the
        shifts as distances in image widths), and per experiment a ``[n * S, (k + 1) * S, 3]`` uint8 grid (a row
        per base: the base image, then its variants).
    """
    device = G.mapping.w_avg.device
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n * (1 + k), G.z_dim, generator=rng)
    with torch.no_grad():
        w = G.mapping(z.to(device), truncation_psi=truncation_psi).cpu()
    w_base, w_other = w[:n], w[n:, 0].reshape(n, k, -1)
    base_images = _synthesize(G, w_base, batch)
    base_angle, base_shift = input_pose(G, w_base)
    base_lm_angle, base_centre = landmark_pose(base_images, detector, predictor)
    base_descriptors = identity.descriptors(base_images)
    rows, grids = [], {}
    size = G.img_resolution
    for experiment in EXPERIMENTS:
        ws = swap_rows(w_base, w_other, experiment).reshape(n * k, *w_base.shape[1:])
        images = _synthesize(G, ws, batch)
        angle, shift = input_pose(G, ws)
        lm_angle, centre = landmark_pose(images, detector, predictor)
        descriptors = identity.descriptors(images)
        base = np.repeat(np.arange(n), k)
        rows.append(
            pd.DataFrame(
                {
                    "experiment": experiment,
                    "sample": base,
                    "variant": np.tile(np.arange(k), n),
                    "input_angle_deg": (angle - base_angle[base] + 180) % 360 - 180,
                    "input_shift": np.linalg.norm(shift - base_shift[base], axis=1),
                    "landmark_angle_deg": (lm_angle - base_lm_angle[base] + 180) % 360 - 180,
                    "landmark_shift": np.linalg.norm(centre - base_centre[base], axis=1),
                    "identity": descriptor_cosine(descriptors, base_descriptors[base]),
                }
            )
        )
        tiles = np.concatenate([base_images[:, None], images.reshape(n, k, size, size, 3)], axis=1)
        grids[experiment] = tile(tiles.reshape(n * (k + 1), size, size, 3), columns=k + 1)
    return pd.concat(rows, ignore_index=True), grids


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per experiment: the mean absolute change of each pose measure, the mean identity similarity and the share
    of variants whose landmarks were found (``faces_found``)."""
    grouped = table.assign(
        input_angle_deg=table.input_angle_deg.abs(),
        landmark_angle_deg=table.landmark_angle_deg.abs(),
        faces_found=table.landmark_shift.notna(),
    ).groupby("experiment", sort=False)
    columns = ["input_angle_deg", "input_shift", "landmark_angle_deg", "landmark_shift", "identity", "faces_found"]
    return grouped[columns].mean().reindex(list(EXPERIMENTS))
