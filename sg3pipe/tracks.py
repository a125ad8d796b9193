"""The face tracks of a video in its per-frame tables.

With ``faces.max_faces`` > 1 a video can hold several faces, each followed through the whole chain as a *track*.
Every per-frame table (frames, latents, edits, smoothed, metrics) then has one row per (source frame, track),
frame-major: the ``T`` rows of frame 0 (tracks 0..T-1), then those of frame 1, and so on, with the track index in
column ``track``; the crop containers hold one crop per row in the same order. Frame-major order lets every
stage stream the clip once, frame after frame, with all its faces at hand (the paste-back puts every track's
edit into the same source frame), and keeps the tables of a one-face video exactly as they were.
"""

from __future__ import annotations

import numpy as np


def track_name(track: int) -> str:
    """The name of track ``track`` in file names and summaries: ``face0``, ``face1``, ..."""
    return f"face{int(track)}"


def track_rows(tracks: np.ndarray) -> list[np.ndarray]:
    """The rows of each track, from a table's ``track`` column ``[R]`` (frame-major, module docstring).

    Returns:
        One ``[N]`` int64 array of row indices per track, track 0 first, in frame order.

    Raises:
        ValueError: the rows are not frame-major with every track in every frame.
    """
    tracks = np.asarray(tracks, dtype=np.int64)
    count = int(tracks.max()) + 1 if len(tracks) else 1
    if len(tracks) % count or (tracks != np.tile(np.arange(count), len(tracks) // count)).any():
        raise ValueError(f"a table's `track` column must repeat 0..{count - 1} frame after frame")
    return [np.arange(track, len(tracks), count, dtype=np.int64) for track in range(count)]
