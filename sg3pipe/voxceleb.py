"""A manifest (``samples.tsv``) from a VoxCeleb1 or VoxCeleb2 directory tree, with a seeded subset.

* VoxCeleb2 (and VoxCeleb1's released clips): ``ROOT/id*/CLIP/*.mp4``, one row per segment file.
* VoxCeleb1 face tracks: ``ROOT/id*/CLIP/*.txt``, a header (``Identity :``, ``Reference :``, ...) and then
  ``FRAME X Y W H`` rows, the box as fractions of the frame, frames at 25 frames/s of the YouTube video
  ``CLIP``. Each track becomes one row: the video ``VIDEOS/CLIP.mp4``, ``start_s``/``end_s`` spanning the
  track, and a face-track table in pixels (sg3pipe.faces.tracking's columns) written beside the manifest.

Row ids are ``{identity}_{clip}_{segment}``. The subset takes ``identities`` identities and at most
``clips_per_identity`` clips of each, drawn with ``seed`` (all of them when None), then every segment of those.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pandas as pd

from sg3pipe.io.atomic import atomic_path

TRACK_FPS = 25.0  # VoxCeleb1's face tracks count frames at 25 frames/s


def scan(root: str | os.PathLike) -> pd.DataFrame:
    """Every segment under ``root``: columns ``identity``, ``clip``, ``segment``, ``file`` (an .mp4 or a
    VoxCeleb1 .txt track), sorted."""
    rows = [
        {"identity": path.parts[-3], "clip": path.parts[-2], "segment": path.stem, "file": str(path)}
        for suffix in ("mp4", "txt")
        for path in Path(root).glob(f"id*/*/*.{suffix}")
    ]
    if not rows:
        raise FileNotFoundError(
            f"{root}: no id*/CLIP/*.mp4 or *.txt files; point at the VoxCeleb folder of id* folders"
        )
    return pd.DataFrame(rows).sort_values(["identity", "clip", "segment", "file"], ignore_index=True)


def subset(segments: pd.DataFrame, identities: int | None, clips_per_identity: int | None, seed: int) -> pd.DataFrame:
    """The segments of ``identities`` identities and ``clips_per_identity`` clips of each, drawn with ``seed``."""
    rng = random.Random(seed)
    names = sorted(segments["identity"].unique())
    chosen = sorted(rng.sample(names, identities)) if identities is not None and identities < len(names) else names
    keep = []
    for identity in chosen:
        clips = sorted(segments.loc[segments["identity"] == identity, "clip"].unique())
        if clips_per_identity is not None and clips_per_identity < len(clips):
            clips = sorted(rng.sample(clips, clips_per_identity))
        keep.append(segments[(segments["identity"] == identity) & segments["clip"].isin(clips)])
    return pd.concat(keep, ignore_index=True)


def read_voxceleb1_track(path: str | os.PathLike) -> pd.DataFrame:
    """A VoxCeleb1 track file -> columns ``frame`` (int) and ``x``, ``y``, ``w``, ``h`` (fractions of the frame)."""
    lines = Path(path).read_text().splitlines()
    try:
        start = next(k for k, line in enumerate(lines) if line.split()[:1] == ["FRAME"]) + 1
    except StopIteration:
        raise ValueError(f"{path}: no 'FRAME X Y W H' header; is this a VoxCeleb1 face-track file?") from None
    values = np.array([line.split() for line in lines[start:] if line.strip()], dtype=np.float64).reshape(-1, 5)
    return pd.DataFrame({"frame": values[:, 0].astype(int), **dict(zip("xywh", values[:, 1:].T, strict=True))})


def build_manifest(
    root: str | os.PathLike,
    out: str | os.PathLike,
    videos: str | os.PathLike | None = None,
    identities: int | None = None,
    clips_per_identity: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Write the manifest of a VoxCeleb tree (module docstring) to ``out``; returns it.

    Args:
        videos: the folder of VoxCeleb1's YouTube videos (``CLIP.mp4``), needed for .txt tracks; a track whose
            video is missing is left out (and counted in the returned frame's ``attrs["missing_videos"]``).
    """
    from sg3pipe.video.probe import probe_video

    out = Path(out)
    chosen = subset(scan(root), identities, clips_per_identity, seed)
    tracks_dir = out.parent / f"{out.stem}.tracks"
    rows, missing = [], 0
    for segment in chosen.itertuples():
        video_id = f"{segment.identity}_{segment.clip}_{segment.segment}"
        if segment.file.endswith(".mp4"):
            rows.append({"id": video_id, "path": segment.file})
            continue
        video = Path(videos) / f"{segment.clip}.mp4" if videos is not None else None
        if video is None or not video.exists():
            missing += 1
            continue
        info = probe_video(video)
        track = read_voxceleb1_track(segment.file)
        boxes = pd.DataFrame(
            {
                "frame": track["frame"],
                "x0": track["x"] * info.width,
                "y0": track["y"] * info.height,
                "x1": (track["x"] + track["w"]) * info.width,
                "y1": (track["y"] + track["h"]) * info.height,
            }
        )
        track_path = tracks_dir / f"{video_id}.tsv"
        with atomic_path(track_path) as tmp:
            boxes.to_csv(tmp, sep="\t", index=False)
        rows.append(
            {
                "id": video_id,
                "path": str(video),
                "start_s": track["frame"].min() / TRACK_FPS,
                "end_s": (track["frame"].max() + 1) / TRACK_FPS,
                "face_track": str(track_path),
            }
        )
    manifest = pd.DataFrame(rows, columns=["id", "path", "start_s", "end_s", "face_track"]).dropna(axis=1, how="all")
    with atomic_path(out) as tmp:
        manifest.to_csv(tmp, sep="\t", index=False)
    manifest.attrs["missing_videos"] = missing
    return manifest
