"""Face detectors and 68-point landmark predictors, behind two small interfaces.

* A *detector* is called on a frame ``[H, W]`` or ``[H, W, 3]`` uint8 (and optionally ``upsample``, the times
  the frame is doubled first) and returns :class:`Detections`.
* A *predictor* is called on a frame and boxes ``[K, 4]`` and returns landmarks ``[K, 68, 2]``.

Boxes are ``(x0, y0, x1, y1)`` and landmarks ``(x, y)``, both in pixel coordinates of the frame (dlib's
convention: the centre of pixel ``(col, row)`` is the point ``(col, row)``). Nothing here downloads: model
files come from packages on disk (dlib's, via ``face-recognition-models``) or the standard torch hub cache
(FAN), and a missing file is one :class:`ModelFileMissingError` naming it and where to put it.

The ``table`` backend reads landmarks computed elsewhere (:func:`read_landmark_table`).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

BACKENDS = ("dlib", "face_alignment", "table")
DETECTORS = ("hog", "mmod")

SHAPE_PREDICTOR = "shape_predictor_68_face_landmarks.dat"
MMOD_DETECTOR = "mmod_human_face_detector.dat"
# The 2D FAN checkpoint the face-alignment package loads (its `models_urls['2DFAN-4']`).
FAN_CHECKPOINT = "2DFAN4-11f355bf06.pth.tar"


class ModelFileMissingError(FileNotFoundError):
    """A model file that must be on disk (nothing is downloaded) is not there."""


@dataclass(frozen=True)
class Detections:
    """Faces found in one frame: ``boxes`` ``[K, 4]`` ``(x0, y0, x1, y1)`` pixels; ``scores`` ``[K]``."""

    boxes: np.ndarray
    scores: np.ndarray


def dlib_model_path(name: str) -> Path:
    """Path of a model file shipped by ``face-recognition-models`` (found without importing the package,
    whose import fails with current setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileMissingError(
            f"dlib model {name} not found: install it with `pip install face-recognition-models`"
        )
    path = Path(spec.submodule_search_locations[0]) / "models" / name
    if not path.is_file():
        raise ModelFileMissingError(f"dlib model file {path} is missing: reinstall `face-recognition-models`")
    return path


def fan_checkpoint_path() -> Path:
    """Where the face-alignment package looks for its 2D FAN weights: ``$TORCH_HOME/hub/checkpoints/``."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / FAN_CHECKPOINT


@functools.cache
def _load_dlib(kind: str, path: str | None = None):
    """A dlib model, loaded once per process (loading takes about a second; the models are read-only)."""
    import dlib

    if kind == "hog":
        return dlib.get_frontal_face_detector()
    if kind == "mmod":
        return dlib.cnn_face_detection_model_v1(path)
    return dlib.shape_predictor(path)


def _as_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else np.ascontiguousarray(image)


class HogDetector:
    """dlib's HOG + linear SVM frontal face detector (fast on a CPU; finds faces from about 80 px wide, or
    40 px with ``upsample=1``; up to about 30 degrees of roll)."""

    def __init__(
        self,
        upsample: int = 0,  # Times the frame is doubled before detection (smaller faces, 4x slower).
        threshold: float = 0.0,  # Minimum SVM score; lower finds more faces and more false ones.
    ):
        self.color = False  # reads gray images
        self.upsample = upsample
        self.threshold = threshold
        self._detector = _load_dlib("hog")

    def __call__(self, image: np.ndarray, upsample: int | None = None) -> Detections:
        """Faces in ``image``; ``upsample`` overrides the configured number of doublings."""
        upsample = self.upsample if upsample is None else upsample
        rects, scores, _ = self._detector.run(_as_gray(image), upsample, self.threshold)
        return Detections(_rect_array(rects), np.asarray(scores, dtype=np.float64).reshape(-1))


class MmodDetector:
    """dlib's MMOD CNN face detector (more robust to pose than HOG; about 3 s per 512x512 frame on a CPU)."""

    def __init__(
        self,
        upsample: int = 0,  # Times the frame is doubled in size before detection.
        threshold: float = 0.0,  # Minimum detection confidence.
    ):
        self.color = True  # reads RGB images
        self.upsample = upsample
        self.threshold = threshold
        self._detector = _load_dlib("mmod", str(dlib_model_path(MMOD_DETECTOR)))

    def __call__(self, image: np.ndarray, upsample: int | None = None) -> Detections:
        """Faces in ``image``; ``upsample`` overrides the configured number of doublings."""
        upsample = self.upsample if upsample is None else upsample
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        found = [d for d in self._detector(np.ascontiguousarray(rgb), upsample) if d.confidence >= self.threshold]
        return Detections(
            _rect_array([d.rect for d in found]), np.array([d.confidence for d in found], dtype=np.float64)
        )


def _rect_array(rects) -> np.ndarray:
    """dlib rectangles -> ``[K, 4]`` float64 ``(x0, y0, x1, y1)``."""
    return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=np.float64).reshape(-1, 4)


class DlibPredictor:
    """dlib's 68-point shape predictor (the one the FFHQ alignment was defined with)."""

    def __init__(self):
        self.color = False  # reads gray images
        self.model_path = dlib_model_path(SHAPE_PREDICTOR)
        self._predictor = _load_dlib("shape_predictor", str(self.model_path))

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        import dlib

        gray = _as_gray(image)
        out = np.empty((len(boxes), 68, 2))
        for i, (x0, y0, x1, y1) in enumerate(np.rint(np.asarray(boxes, dtype=np.float64)).astype(int)):
            shape = self._predictor(gray, dlib.rectangle(x0, y0, x1, y1))
            out[i] = [(p.x, p.y) for p in shape.parts()]
        return out


class FanPredictor:
    """The 2D FAN landmark network of the face-alignment package, run on boxes we give it.

    Only the network class and its weights come from the package (read from :func:`fan_checkpoint_path`);
    the crop around each box follows the package's recipe (a square of ``(w + h) / 195 * 200`` pixels centred
    ``0.12 h`` above the box centre, at 256 x 256), cut with one antialiased warp, and the 64 x 64 heatmaps
    are decoded as the package does (peak plus a quarter pixel towards the higher neighbour), batched over
    faces. The package's detectors are not used, so nothing else is needed on disk.
    """

    def __init__(
        self,
        device: str = "auto",  # Torch device for the network; auto: CUDA when present, else the CPU.
    ):
        path = fan_checkpoint_path()
        if not path.is_file():
            raise ModelFileMissingError(
                f"face-alignment's FAN weights {path.name} are not in {path.parent}: copy the file there "
                f"(or set TORCH_HOME so that $TORCH_HOME/hub/checkpoints/{path.name} exists), or use the "
                "`dlib` landmark backend"
            )
        import torch
        from face_alignment.models import FAN

        from sg3pipe.devices import pick_device

        self.color = True  # reads RGB images
        self.model_path = path
        self.device = pick_device(device)
        self._net = FAN(4)
        self._net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self._net.eval().to(self.device)

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        import torch

        from sg3pipe.faces.alignment import square_quad, warp_quad

        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if not len(boxes):
            return np.empty((0, 68, 2))
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        centres = np.stack([0.5 * (boxes[:, 0] + boxes[:, 2]), 0.5 * (boxes[:, 1] + boxes[:, 3]) - 0.12 * height], 1)
        sides = (width + height) / 195.0 * 200.0
        crops = np.stack(
            [warp_quad(rgb, square_quad(c, s), 256, "constant") for c, s in zip(centres, sides, strict=True)]
        )
        batch = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255.0).to(self.device)
        with torch.inference_mode():
            heatmaps = self._net(batch)
        heatmaps = (heatmaps[-1] if isinstance(heatmaps, list | tuple) else heatmaps).float().cpu().numpy()
        # heatmap unit coordinates (origin at the crop centre, 1 = crop side) -> frame pixels
        return centres[:, None, :] + decode_heatmaps(heatmaps) * sides[:, None, None]


def decode_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """Peak of each heatmap, moved a quarter pixel towards its higher neighbour, in unit coordinates.

    Args:
        heatmaps: ``[K, P, R, R]`` scores.

    Returns:
        ``[K, P, 2]`` ``(x, y)`` with the origin at the heatmap's centre and 1 = its side.
    """
    k, p, r, _ = heatmaps.shape
    flat = heatmaps.reshape(k, p, r * r).argmax(axis=-1)
    row, col = np.divmod(flat, r)
    xy = np.stack([col, row], axis=-1).astype(np.float64)
    inner = (col > 0) & (col < r - 1) & (row > 0) & (row < r - 1)
    kk, pp = np.nonzero(inner)
    rr, cc = row[inner], col[inner]
    dx = heatmaps[kk, pp, rr, cc + 1] - heatmaps[kk, pp, rr, cc - 1]
    dy = heatmaps[kk, pp, rr + 1, cc] - heatmaps[kk, pp, rr - 1, cc]
    xy[kk, pp] += 0.25 * np.sign(np.stack([dx, dy], axis=-1))
    return (xy + 0.5) / r - 0.5


def make_detector(kind: str = "hog", upsample: int = 0, threshold: float = 0.0):
    """A detector by config name: ``"hog"`` (:class:`HogDetector`) or ``"mmod"`` (:class:`MmodDetector`)."""
    if kind == "hog":
        return HogDetector(upsample, threshold)
    if kind == "mmod":
        return MmodDetector(upsample, threshold)
    raise ValueError(f"unknown face detector {kind!r}; use one of {DETECTORS}")


def make_predictor(backend: str = "dlib", device: str = "auto"):
    """A landmark predictor by config name: ``"dlib"`` or ``"face_alignment"``."""
    if backend == "dlib":
        return DlibPredictor()
    if backend == "face_alignment":
        return FanPredictor(device)
    raise ValueError(f"landmark backend {backend!r} has no predictor; use 'dlib' or 'face_alignment'")


def read_landmark_table(path: str | os.PathLike, frames: np.ndarray) -> np.ndarray:
    """Landmarks of the given source frames from a table with columns ``frame`` and ``landmarks``.

    Args:
        path: Parquet file (e.g. the synthetic samples' ``*.truth.parquet``); ``landmarks`` holds 136 numbers
            per row, ``(x, y)`` pixel coordinates of the 68 points.
        frames: ``[N]`` source frame indices wanted.

    Returns:
        ``[N, 68, 2]`` float64 pixel coordinates; NaN for frames the table lacks (or holds NaN for).
    """
    table = pq.read_table(path, columns=["frame", "landmarks"]).to_pandas()
    values = np.stack(table["landmarks"].to_numpy()).astype(np.float64) if len(table) else np.empty((0, 136))
    if values.shape[1:] != (136,):
        raise ValueError(f"{path}: column `landmarks` must hold 68 (x, y) points per row, found {values.shape[1:]}")
    index = pd.Index(table["frame"].to_numpy())
    if index.has_duplicates:
        raise ValueError(f"{path}: frame {index[index.duplicated()][0]} appears twice; keep one row per frame")
    rows = index.get_indexer(np.asarray(frames))
    out = np.full((len(rows), 68, 2), np.nan)
    found = rows >= 0
    out[found] = values[rows[found]].reshape(-1, 68, 2)
    return out
