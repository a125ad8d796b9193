"""How well tracks of several faces follow the faces, against ground truth (MOT-style tracking metrics).

The truth is each face's 68 landmarks in every frame, ``[N, T, 68, 2]`` for ``N`` faces and ``T`` frames (also
where the face is covered or outside the frame), and whether it is visible, ``[N, T]``. The tracks are, per
frame, track id -> :class:`~sg3pipe.faces.tracking.FaceFrame` (:meth:`MultiFaceTracker.update`'s results).

In each frame the tracks are matched one-to-one to the truth faces so as to minimise the summed mean landmark
distance, in units of the truth face's FFHQ quad side (so that a near face and a far face count alike); a pair
farther apart than :data:`MAX_MATCH_DISTANCE` is no match. From the matching come the *id switches* (times a
truth face's track id changes between the frames where it is tracked, as in the CLEAR MOT metrics), the
*tracked fraction* of the visible face-frames and the *roll error* of the matched tracks' FFHQ quads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from sg3pipe.faces.alignment import ffhq_quad, quad_angle_deg, quad_side
from sg3pipe.faces.tracking import FaceFrame
from sg3pipe.io.tables import column_array

MAX_MATCH_DISTANCE = 0.15  # mean landmark distance of a match, at most, in truth FFHQ quad sides
UNMATCHED = -1  # track id of a truth face-frame no track is on


def truth_arrays(truth: pd.DataFrame | Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A multi-face truth table (:func:`sg3pipe.synth.multi_face.write_multi_face_clip`) as arrays per face and
    frame.

    Args:
        truth: its columns ``face``, ``frame``, ``landmarks`` (68 x 2 per row), ``visible`` and ``uncovered``;
            a frame read from the Parquet file or the dict of :func:`~sg3pipe.synth.multi_face.multi_face_clip`.

    Returns:
        landmarks ``[N, T, 68, 2]`` float64 frame pixels, visible ``[N, T]`` bool and uncovered ``[N, T]``
        float64 (fraction of the landmarks in the frame and not covered by a nearer face).
    """
    face = np.asarray(truth["face"], dtype=np.int64)
    frame = np.asarray(truth["frame"], dtype=np.int64)
    if isinstance(truth, pd.DataFrame):
        rows = column_array(truth, "landmarks", (68, 2)).astype(np.float64)
    else:
        rows = np.asarray(truth["landmarks"], dtype=np.float64).reshape(-1, 68, 2)
    shape = (face.max() + 1, frame.max() + 1)
    if len(face) != shape[0] * shape[1]:
        raise ValueError(f"truth has {len(face)} rows, not one per face and frame ({shape[0]} x {shape[1]})")
    landmarks = np.empty(shape + (68, 2))
    visible = np.empty(shape, bool)
    uncovered = np.empty(shape)
    landmarks[face, frame] = rows
    visible[face, frame] = np.asarray(truth["visible"], dtype=bool)
    uncovered[face, frame] = np.asarray(truth["uncovered"], dtype=np.float64)
    return landmarks, visible, uncovered


def roll_error_deg(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Absolute roll difference of the FFHQ quads of landmarks ``found`` and ``truth`` ``[..., 68, 2]``.

    Returns:
        ``[...]`` degrees in [0, 180].
    """
    difference = quad_angle_deg(ffhq_quad(found)) - quad_angle_deg(ffhq_quad(truth))
    return np.abs((difference + 180.0) % 360.0 - 180.0)


def match_tracks(
    found: Sequence[Mapping[int, FaceFrame]], landmarks: np.ndarray, max_distance: float = MAX_MATCH_DISTANCE
) -> tuple[np.ndarray, np.ndarray]:
    """Match tracks to truth faces frame by frame (module docstring).

    Args:
        found: ``T`` frames of track id -> ``FaceFrame`` (with landmarks ``[68, 2]``).
        landmarks: ``[N, T, 68, 2]`` truth landmarks, frame pixels.
        max_distance: a track farther than this from a face (mean landmark distance over the face's FFHQ quad
            side) is not on it.

    Returns:
        matched ``[N, T]`` int64: the track id on each truth face in each frame, :data:`UNMATCHED` where none;
        and roll errors ``[M]`` degrees (:func:`roll_error_deg`) of the ``M`` matched face-frames.
    """
    n_faces, n_frames = landmarks.shape[:2]
    if len(found) != n_frames:
        raise ValueError(f"{len(found)} frames of tracks for {n_frames} frames of truth")
    matched = np.full((n_faces, n_frames), UNMATCHED, dtype=np.int64)
    pairs_found, pairs_truth = [], []
    side = quad_side(ffhq_quad(landmarks))  # [N, T]
    for t, frame in enumerate(found):
        ids = sorted(frame)
        if not ids:
            continue
        tracked = np.stack([frame[i].landmarks for i in ids])  # [K, 68, 2]
        offset = tracked[None] - landmarks[:, t, None]  # [N, K, 68, 2]
        distance = np.linalg.norm(offset, axis=-1).mean(axis=-1) / side[:, t, None]  # [N, K]
        for f, k in zip(*linear_sum_assignment(distance), strict=True):
            if distance[f, k] < max_distance:
                matched[f, t] = ids[k]
                pairs_found.append(tracked[k])
                pairs_truth.append(landmarks[f, t])
    if not pairs_found:
        return matched, np.empty(0)
    return matched, roll_error_deg(np.stack(pairs_found), np.stack(pairs_truth))


def id_switches(matched: np.ndarray) -> int:
    """Times a truth face's track id changes between the frames where it is tracked.

    Args:
        matched: ``[N, T]`` track ids per truth face and frame, negative where untracked (:func:`match_tracks`).
    """
    return sum(int((np.diff(row[row >= 0]) != 0).sum()) for row in np.asarray(matched))


def tracked_fraction(matched: np.ndarray, visible: np.ndarray) -> float:
    """Fraction of the visible face-frames that a track is on.

    Args:
        matched: ``[N, T]`` track ids per truth face and frame, negative where untracked (:func:`match_tracks`).
        visible: ``[N, T]`` bool, the face-frames that count.

    Returns:
        In [0, 1]; NaN when no face-frame is visible.
    """
    on = np.asarray(matched)[np.asarray(visible, dtype=bool)] >= 0
    return float(on.mean()) if on.size else float("nan")
