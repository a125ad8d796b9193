"""Follow one face through a video: detect once, then search only near where the face was.

Per frame, :class:`FaceTracker` does one of two things:

* **track** (the face was found in the previous frame): cut a small square *region of interest* around the
  previous frame's FFHQ quad, turned upright and scaled so the face is about :data:`DETECT_FACE_PX` pixels
  wide, run the detector there (a few milliseconds, and the upright face scores high), keep the detection that
  continues the track, and predict the landmarks on the same region cut at full resolution. Turning the face
  upright first is what keeps the landmarks accurate when the head rolls: dlib's and FAN's predictors start
  from an upright mean face.
* **detect** (first frame, the track was lost, or its region held no face): run the detector on the whole
  frame, pick the face continuing the last track (else the highest-scoring one), then refine its landmarks
  with a track step on the same frame.

So a frame costs about one small detection; whole-frame detections happen on the first frame and after losing
the face (with the detector's ``upsample`` setting, to find small faces), and every ``redetect_every`` frames
to count the faces in view (``n_faces``; without upsampling, so it counts faces from about 80 px wide).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from sg3pipe.faces.alignment import ffhq_quad, quad_axes, quad_sampling_matrix, warp_quad
from sg3pipe.faces.landmarks import Detections

# Face width (detector box, pixels) in the detection region: dlib's HOG window is 80 px.
DETECT_FACE_PX = 100
# Width of dlib's HOG box relative to the FFHQ quad side of the same face (measured on the astronaut: 0.57).
BOX_PER_QUAD = 0.57
# Side of the search region relative to the previous frame's FFHQ quad side: the face may move by about a
# third of its quad between frames and still be inside.
REGION_FACTOR = 1.25
# A detection in the region continues the track when it overlaps the expected box by at least this much.
MIN_IOU = 0.3


@dataclass(frozen=True)
class FaceFrame:
    """The tracker's result for one frame.

    Attributes:
        landmarks: ``[68, 2]`` pixel coordinates, or None when no face was found.
        box: ``[4]`` ``(x0, y0, x1, y1)`` axis-aligned bounds of the detector's box in frame pixels, or None.
        score: the detector's score for the face (NaN when none).
        n_faces: faces seen at the last whole-frame detection (or in this frame's region, if more).
        detected: whether a whole-frame detection ran on this frame.
    """

    landmarks: np.ndarray | None
    box: np.ndarray | None
    score: float
    n_faces: int
    detected: bool


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a`` ``[K, 4]`` with one box ``b`` ``[4]``; returns ``[K]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, 2], b[2]) - np.maximum(a[:, 0], b[0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[3]) - np.maximum(a[:, 1], b[1]), 0, None)
    inter = w * h
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / np.maximum(area - inter, 1e-9)


def map_points(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a ``[2, 3]`` affine map to points ``[..., 2]``."""
    return points @ affine[:, :2].T + affine[:, 2]


def box_bounds(affine: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Axis-aligned bounds ``[4]`` of a box ``[4]`` after an affine map ``[2, 3]`` (e.g. region -> frame)."""
    x0, y0, x1, y1 = box
    corners = map_points(affine, np.array([[x0, y0], [x0, y1], [x1, y1], [x1, y0]]))
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)])


def count_others(found: Detections, box: np.ndarray | None, count_score: float) -> int:
    """Detections scoring at least ``count_score`` that are not the face at ``box`` ``[4]`` (None: all)."""
    others = found.scores >= count_score
    if box is not None:
        others &= iou(found.boxes, box) < MIN_IOU
    return int(others.sum())


def track_region(detector, predictor, image: np.ndarray, previous: np.ndarray, count_score: float) -> FaceFrame | None:
    """The track step: search the upright region around the quad of ``previous`` landmarks ``[68, 2]``.

    Args:
        detector, predictor: as :class:`FaceTracker`'s.
        image: the frame, ``[H, W, 3]`` uint8 RGB or ``[H, W]`` gray for gray-only models.
        previous: the face's landmarks in the previous frame, ``[68, 2]`` frame pixels.
        count_score: other faces in the region count towards ``n_faces`` from this detector score.

    Returns:
        The face continuing the track (landmarks and box in frame pixels), with ``n_faces`` counting it and the
        other confident faces in the region; None when the region holds no such face.
    """
    centre, x, y = quad_axes(ffhq_quad(previous))
    x, y = REGION_FACTOR * x, REGION_FACTOR * y
    region = np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])
    det_size = int(round(REGION_FACTOR * DETECT_FACE_PX / BOX_PER_QUAD))  # so the box is DETECT_FACE_PX
    found = detector(warp_quad(image, region, det_size), upsample=0)  # the face is DETECT_FACE_PX wide
    expected = np.array([0.5, 0.5, 0.5, 0.5]) * det_size + np.array([-0.5, -0.5, 0.5, 0.5]) * DETECT_FACE_PX
    overlap = iou(found.boxes, expected)
    if not len(found.boxes) or overlap.max() < MIN_IOU:
        return None
    pick = int(np.argmax(overlap))
    # Predict at (at least) the frame's own resolution.
    size = max(det_size, int(round(2.0 * float(np.linalg.norm(x)))))
    box = (found.boxes[pick] + 0.5) * (size / det_size) - 0.5
    landmarks = predictor(warp_quad(image, region, size), box[None])[0]
    to_frame = quad_sampling_matrix(region, size)
    return FaceFrame(
        map_points(to_frame, landmarks),
        box_bounds(to_frame, box),
        float(found.scores[pick]),
        1 + count_others(found, found.boxes[pick], count_score),
        False,
    )


class FaceTracker:
    """Landmarks of one face per frame, frame after frame (module docstring).

    Args:
        detector: called on a frame, returns :class:`~sg3pipe.faces.landmarks.Detections`.
        predictor: called on a frame and boxes ``[K, 4]``, returns landmarks ``[K, 68, 2]``.
        redetect_every: run a whole-frame detection at least every this many frames to count the faces in
            view (0: only when the track is lost).
        count_score: another face counts towards ``n_faces`` when its detector score is at least this
            (dlib's HOG detector scores real faces mostly above 0.5 and its false alarms below).
    """

    def __init__(self, detector, predictor, redetect_every: int = 25, count_score: float = 0.5):
        self.detector = detector
        self.predictor = predictor
        self.redetect_every = redetect_every
        self.count_score = count_score
        # dlib's detector and predictor read gray images; converting once per frame saves time.
        self.color = getattr(detector, "color", True) or getattr(predictor, "color", True)
        self._landmarks: np.ndarray | None = None  # the track: last frame's landmarks [68, 2]
        self._last_box: np.ndarray | None = None  # the last box found, kept while the face is lost
        self._others = 0  # other faces at the last whole-frame detection
        self._since_detect = 0
        self.detections = 0  # whole-frame detections so far
        self.region_detections = 0  # region detections so far

    def update(self, image: np.ndarray) -> FaceFrame:
        """Find the face in the next frame ``[H, W, 3]`` uint8 RGB (``[H, W]`` gray for gray-only models)."""
        if not self.color and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        self._since_detect += 1
        found = None if self._landmarks is None else self._track(image, self._landmarks)
        if found is not None and self.redetect_every and self._since_detect >= self.redetect_every:
            self._others = count_others(self._detect_all(image, upsample=0), found.box, self.count_score)
        elif found is None:
            found = self._detect(image)
        self._landmarks = None if found is None else found.landmarks
        if found is None:
            return FaceFrame(None, None, float("nan"), self._others, self._since_detect == 0)
        self._last_box = found.box
        return FaceFrame(
            found.landmarks,
            found.box,
            found.score,
            1 + max(self._others, found.n_faces - 1),
            self._since_detect == 0,
        )

    def _detect_all(self, image: np.ndarray, upsample: int | None = None) -> Detections:
        """Whole-frame detection (``upsample`` None: the detector's own setting)."""
        self.detections += 1
        self._since_detect = 0
        return self.detector(image, upsample=upsample)

    def _detect(self, image: np.ndarray) -> FaceFrame | None:
        """Whole-frame detection, then a track step on the chosen face to refine its landmarks."""
        found = self._detect_all(image)
        if not len(found.boxes):
            self._others = 0
            return None
        if self._last_box is not None and iou(found.boxes, self._last_box).max() > 0:
            pick = int(np.argmax(iou(found.boxes, self._last_box)))
        else:
            pick = int(np.argmax(found.scores))
        self._others = count_others(found, found.boxes[pick], self.count_score)
        coarse = self.predictor(image, found.boxes[pick : pick + 1])[0]
        refined = self._track(image, coarse)
        if refined is not None:
            return refined
        return FaceFrame(coarse, found.boxes[pick], float(found.scores[pick]), 1, True)

    def _track(self, image: np.ndarray, previous: np.ndarray) -> FaceFrame | None:
        """One region step (:func:`track_region`) around ``previous`` landmarks ``[68, 2]``."""
        self.region_detections += 1
        return track_region(self.detector, self.predictor, image, previous, self.count_score)


def read_face_track(path: str | os.PathLike) -> dict[int, np.ndarray]:
    """Face boxes from a face-track table.

    Args:
        path: Parquet, CSV or TSV (by extension) with columns ``frame`` (source frame index), ``x0``, ``y0``,
            ``x1``, ``y1`` (box corners in pixels of the upright decoded frame); frames without a row have no
            face.

    Returns:
        Source frame index -> ``[4]`` float64 box.
    """
    path = str(path)
    if path.endswith(".parquet"):
        table = pd.read_parquet(path)
    else:
        table = pd.read_csv(path, sep="\t" if path.endswith((".tsv", ".txt")) else ",")
    missing = {"frame", "x0", "y0", "x1", "y1"} - set(table.columns)
    if missing:
        raise ValueError(f"face track {path} lacks columns {sorted(missing)}; it needs frame, x0, y0, x1, y1")
    boxes = table[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)
    return {int(frame): box for frame, box in zip(table["frame"], boxes, strict=True)}
