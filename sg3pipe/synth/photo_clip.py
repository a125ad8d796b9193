"""The real-photo sample clip: scikit-image's astronaut photograph filmed by a known moving camera.

Every frame is the photo moved by a similarity ``M_t`` (sg3pipe.transforms convention: content-moving, unit =
image width, origin at the image centre): rotation within +-10 degrees, a few percent of translation, 0-12 %
zoom, all smooth in time. The ground truth of frame ``t`` is ``M_t`` and the 68 landmarks dlib finds once on
the still photo moved by ``M_t``, so a landmark pipeline run on the clip can be scored against it: what it
measures is how well the pipeline follows the face through rotation, motion, zoom and h264 compression.

The clip has a soundtrack that ends ``AUDIO_SHORT_S`` before its last frame, as a camera's audio often does: the
rendered videos of every run then carry audio that must be fitted to the frames (sg3pipe.video.writer).
"""

from __future__ import annotations

import os
import subprocess

import cv2
import numpy as np
from skimage import data

from sg3pipe.faces.crop_transforms import unit_to_pixel_matrix
from sg3pipe.faces.landmarks import DlibPredictor, HogDetector, dlib_model_path
from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.tables import write_table
from sg3pipe.provenance import provenance
from sg3pipe.transforms import make_transform, pixel_to_unit, unit_to_pixel
from sg3pipe.video.errors import ffmpeg_reason
from sg3pipe.video.ffmpeg import ffmpeg_exe
from sg3pipe.video.writer import write_video

# The soundtrack (an ffmpeg lavfi source, 48 kHz mono): quiet speech-like noise, pink noise in the voice band
# pulsing at a syllable rate, from a fixed seed so the file is the same on every build.
SOUNDTRACK = (
    "anoisesrc=color=pink:amplitude=0.1:seed=1:sample_rate=48000:duration={seconds},"
    "highpass=f=300,lowpass=f=3000,tremolo=f=4:d=0.9"
)
AUDIO_SHORT_S = 0.02  # how much earlier than the video the soundtrack ends (s)


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


def add_soundtrack(frames_video: str | os.PathLike, path: str | os.PathLike, seconds: float) -> None:
    """Write ``path``: the video stream of ``frames_video``, copied (the frames stay bit-identical), with
    ``seconds`` of ``SOUNDTRACK`` as an AAC track starting with the first frame."""
    source = SOUNDTRACK.format(seconds=f"{seconds:.6f}")
    args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(frames_video)]
    args += ["-f", "lavfi", "-i", source, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed adding the soundtrack to {path}: {ffmpeg_reason(result.stderr)}")


def make_photo_clip(
    video_path: str | os.PathLike,
    truth_path: str | os.PathLike,
    size: int = 512,
    seconds: float = 4.0,
    fps: float = 25.0,
) -> None:
    """Write the astronaut clip (h264 mp4 with its soundtrack) and its ground truth table.

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
    with atomic_path(video_path) as tmp:
        frames_video = tmp.with_name(f"{tmp.stem}.frames{tmp.suffix}")
        try:
            write_video(frames_video, render_frames(photo, matrices, size), fps, codec="h264")
            add_soundtrack(frames_video, tmp, n_frames / fps - AUDIO_SHORT_S)
        finally:
            frames_video.unlink(missing_ok=True)
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
