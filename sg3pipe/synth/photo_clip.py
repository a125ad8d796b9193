"""The real-photo sample clip: scikit-image's astronaut photograph filmed by a known moving camera.

Every frame is the photo moved by a similarity ``M_t`` (sg3pipe.transforms convention: content-moving, unit =
image width, origin at the image centre): rotation within +-10 degrees, a few percent of translation, 0-12 %
zoom, all smooth in time. The ground truth of frame ``t`` is ``M_t`` and the 68 landmarks dlib finds once on
the still photo moved by ``M_t``, so a landmark pipeline run on the clip can be scored against it: what it
measures is how well the pipeline follows the face through rotation, motion, zoom and h264 compression.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
from skimage import data

from sg3pipe.faces.crop_transforms import unit_to_pixel_matrix
from sg3pipe.faces.landmarks import DlibPredictor, HogDetector, dlib_model_path
from sg3pipe.io.tables import write_table
from sg3pipe.provenance import provenance
from sg3pipe.transforms import make_transform, pixel_to_unit, unit_to_pixel
from sg3pipe.video.writer import write_video


def camera_path(n_frames: int, fps: float) -> dict[str, np.ndarray]:
    """The camera's similarity per frame, smooth in time.

    Returns:
        ``{"time_s", "angle_deg", "tx", "ty", "scale"}``, each ``[n_frames]`` float64 (angle in degrees,
        counter-clockwise; tx, ty in image widths; scale a zoom factor >= 1 so no frame is shrunk).
    """
    t = np.arange(n_frames) / fps
    return {
        "time_s": t,
        "angle_deg": 9.5 * np.sin(2 * np.pi * t / 4.0 + 0.3),
        "tx": 0.04 * np.sin(2 * np.pi * t / 2.7 + 0.5),
        "ty": 0.03 * np.sin(2 * np.pi * t / 3.3 + 1.1),
        "scale": 1.06 + 0.05 * np.sin(2 * np.pi * t / 3.7),
    }


def photo_landmarks(photo: np.ndarray) -> np.ndarray:
    """The 68 landmarks ``[68, 2]`` (pixels) dlib finds on the one face of a still photo."""
    found = HogDetector()(photo)
    if len(found.boxes) != 1:
        raise RuntimeError(f"expected one face in the photo, dlib found {len(found.boxes)}")
    return DlibPredictor()(photo, found.boxes)[0]


def render_frames(photo: np.ndarray, matrices: np.ndarray, size: int):
    """Yield each frame ``[size, size, 3]`` uint8: the photo moved by one content-moving unit matrix of
    ``matrices`` ``[N, 3, 3]`` (bicubic; edges mirrored so no black wedges appear)."""
    photo = cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA) if photo.shape[0] != size else photo
    for m in matrices:
        yield cv2.warpAffine(
            photo,
            unit_to_pixel_matrix(m, size)[:2],
            (size, size),
            flags=cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REFLECT_101,
        )


def make_photo_clip(
    video_path: str | os.PathLike,
    truth_path: str | os.PathLike,
    size: int = 512,
    seconds: float = 4.0,
    fps: float = 25.0,
) -> None:
    """Write the astronaut clip (h264 mp4) and its ground truth table.

    The table has one row per frame: ``frame``, ``time_s``, ``angle_deg``, ``tx``, ``ty``, ``scale``,
    ``transform`` (the 3x3 content-moving matrix ``M_t``, 9 floats row-major) and ``landmarks`` (68 ``(x, y)``
    pixel points of the frame, 136 floats).
    """
    photo = data.astronaut()
    n_frames = int(round(seconds * fps))
    cam = camera_path(n_frames, fps)
    matrices = make_transform(cam["angle_deg"], cam["tx"], cam["ty"], cam["scale"])
    still = pixel_to_unit(photo_landmarks(photo), photo.shape[1])
    moved = np.einsum("nij,kj->nki", matrices[:, :2, :2], still) + matrices[:, None, :2, 2]
    write_video(video_path, render_frames(photo, matrices, size), fps, codec="h264")
    columns = {
        "frame": np.arange(n_frames),
        **cam,
        "transform": matrices.reshape(n_frames, 9),
        "landmarks": unit_to_pixel(moved, size),
    }
    meta = {
        "provenance": provenance(
            {"size": size, "seconds": seconds, "fps": fps},
            {"shape_predictor": dlib_model_path("shape_predictor_68_face_landmarks.dat")},
        ),
        "shapes": {"transform": [3, 3], "landmarks": [68, 2]},
        "source": "skimage.data.astronaut()",
    }
    write_table(truth_path, columns, meta)
