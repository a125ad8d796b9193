"""Locate the ffmpeg binary: the system's ``ffmpeg`` on PATH first, else the one imageio-ffmpeg ships."""

from __future__ import annotations

import functools
import shutil


class FFmpegNotFoundError(RuntimeError):
    """No ffmpeg binary could be found."""


@functools.cache
def ffmpeg_exe() -> str:
    """Path of an ffmpeg executable, or one clear error saying how to get one."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # imageio-ffmpeg missing, or its binary missing for this platform
        raise FFmpegNotFoundError(
            "no ffmpeg binary found: install one with `pip install imageio-ffmpeg` (ships a static ffmpeg) "
            "or your system's package manager (e.g. `apt-get install ffmpeg`), so `ffmpeg` is on PATH"
        ) from exc
