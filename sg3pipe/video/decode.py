"""Decode a video into batches of RGB frames, streaming from one ffmpeg process (no per-frame files).

Frames are decoded on the video's constant-rate grid (see ``sg3pipe.video.probe``): rotation metadata
applied, any pixel format (grayscale, 10-bit, ...) converted to 8-bit RGB, variable-rate input resampled.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO

import numpy as np

from sg3pipe.video.errors import VideoError, ffmpeg_reason
from sg3pipe.video.probe import VideoInfo, decoder_args, frame_rate, probe_video

# A time within this fraction of a frame after a frame's time still selects that frame, so that a time
# written in decimals (e.g. 1/30 s as 0.033333) means the frame it names.
TIME_TOLERANCE_FRAMES = 1e-3


@dataclass
class FrameBatch:
    """Consecutive decoded frames."""

    indices: np.ndarray  # int64 [B]: index in the decoded stream, 0 = the first frame at or after start_s
    times_s: np.ndarray  # float64 [B]: player time each frame is shown at (s from the start of the video)
    images: np.ndarray  # uint8 [B, H, W, 3]: RGB, upright as a player shows it


def read_frames(
    path: str | os.PathLike,
    info: VideoInfo | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    max_frames: int | None = None,
    fps: float | None = None,
    batch_size: int = 64,
) -> Iterator[FrameBatch]:
    """Decode the frames of ``path`` shown at times in ``[start_s, end_s)``, at most ``max_frames`` of them.

    Frames lie on a constant-rate grid: grid frame ``g`` is what a player shows at
    ``info.first_frame_s + g / fps``. The stream starts at the first grid frame at or after ``start_s``.

    Args:
        info: the file's ``probe_video`` result; probed here when None (pass it to avoid probing twice).
        start_s, end_s: player times in seconds; None: the start, the end of the video.
        max_frames: stop after this many frames.
        fps: decode at this rate (frames/s) instead of ``info.fps``; frames are repeated or dropped.
        batch_size: frames per batch (the last batch may be shorter).

    Yields:
        ``FrameBatch``es of ``[B, info.height, info.width, 3]`` uint8 RGB frames; with ``fps`` None and no
        range, ``info.n_frames`` frames in all.

    Raises:
        VideoError: the file cannot be probed or decoded, or ``start_s`` is past the end of the video.
        ValueError: an argument is out of range.
        Both at the call, before any frame is decoded.
    """
    if batch_size < 1 or (fps is not None and fps <= 0):
        raise ValueError(f"need batch_size >= 1 and fps > 0, got {batch_size=}, {fps=}")
    # Checked and probed here, not in the generator, so that a bad file or range fails at the call.
    info = probe_video(path) if info is None else info
    rate = frame_rate(info.fps if fps is None else fps)
    first, count = _grid_range(info, rate, start_s, end_s, max_frames)
    return _decode(path, info, rate, first, count, batch_size)


def read_all_frames(path: str | os.PathLike, **options) -> np.ndarray:
    """Every frame :func:`read_frames` yields for ``path`` and ``options``, as one ``[N, H, W, 3]`` uint8 array
    (for short videos and the small crop containers; stream with :func:`read_frames` otherwise)."""
    return np.concatenate([batch.images for batch in read_frames(path, **options)])


def _decode(
    path: str | os.PathLike, info: VideoInfo, rate: Fraction, first: int, count: int | None, batch_size: int
) -> Iterator[FrameBatch]:
    """The batches of ``read_frames``: ``count`` grid frames (None: all) from grid frame ``first``."""
    if count == 0:
        return
    args = decoder_args(path, float(rate), info.first_frame_s, first, count, size=(info.width, info.height))
    with tempfile.TemporaryFile() as messages:  # a file, not a pipe: ffmpeg never blocks on its messages
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=messages)
        try:
            done = 0
            for images in _image_batches(process.stdout, batch_size, info.height, info.width):
                indices = np.arange(done, done + len(images), dtype=np.int64)
                times_s = info.first_frame_s + (first + indices) / float(rate)
                yield FrameBatch(indices=indices, times_s=times_s, images=images)
                done += len(images)
            returncode = process.wait()
        finally:
            _stop(process)  # also when the consumer stops early: ffmpeg must not outlive the generator
        if returncode != 0:
            messages.seek(0)
            said = ffmpeg_reason(messages.read().decode(errors="replace"))
            raise VideoError(path, f"ffmpeg stopped decoding it after {done} frames ({said})")


def _grid_range(
    info: VideoInfo, rate: Fraction, start_s: float | None, end_s: float | None, max_frames: int | None
) -> tuple[int, int | None]:
    """The first grid frame to decode and how many frames (None: to the end of the video)."""
    if (start_s is not None and start_s < 0) or (max_frames is not None and max_frames < 1):
        raise ValueError(f"need start_s >= 0 and max_frames >= 1, got {start_s=}, {max_frames=}")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise ValueError(f"end_s must be after start_s, got {start_s=}, {end_s=}")
    video_end_s = info.first_frame_s + info.duration_s
    if start_s is not None and start_s >= video_end_s:
        raise VideoError(
            info.path,
            f"start_s={start_s} is at or after the end of the video ({video_end_s:.3f} s)",
            "choose a start_s within the video, or leave it empty to start at the beginning",
        )
    first = 0 if start_s is None else max(0, _grid_index(start_s, info.first_frame_s, rate))
    count = None if end_s is None else max(0, _grid_index(end_s, info.first_frame_s, rate) - first)
    if max_frames is not None:
        count = max_frames if count is None else min(count, max_frames)
    return first, count


def _grid_index(time_s: float, first_frame_s: float, rate: Fraction) -> int:
    """Index of the first grid frame shown at or after ``time_s``."""
    return math.ceil((time_s - first_frame_s) * float(rate) - TIME_TOLERANCE_FRAMES)


def _image_batches(stdout: IO[bytes], batch_size: int, height: int, width: int) -> Iterator[np.ndarray]:
    """``[B, height, width, 3]`` uint8 arrays of the whole frames ffmpeg writes, until it stops."""
    frame_bytes = height * width * 3
    while True:
        images = np.empty((batch_size, height, width, 3), dtype=np.uint8)
        # A buffered pipe's readinto returns short only at the end of the stream.
        filled = stdout.readinto(memoryview(images).cast("B"))
        if filled >= frame_bytes:
            yield images[: filled // frame_bytes]
        if filled < images.nbytes:
            return


def _stop(process: subprocess.Popen) -> None:
    """Close ffmpeg's output and end it if it still runs."""
    process.stdout.close()
    if process.poll() is None:
        process.kill()
    process.wait()
