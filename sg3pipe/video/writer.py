"""Write frames to a video file with ffmpeg, streaming (no per-frame files), atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable

import ffmpeg
import numpy as np

from sg3pipe.io.atomic import atomic_path
from sg3pipe.video.ffmpeg import ffmpeg_exe

# Output codecs by purpose: `lossless` keeps exact pixels (containers of aligned frames and crops),
# `h264` is what players and browsers show.
CODECS = {
    "lossless": {"vcodec": "ffv1", "pix_fmt": "bgr0"},
    "h264": {"vcodec": "libx264", "pix_fmt": "yuv420p", "crf": 18, "preset": "medium"},
}


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    codec: str = "h264",
    audio_from: str | os.PathLike | None = None,
) -> int:
    """Encode RGB frames into ``path``.

    Args:
        frames: iterable of ``[H, W, 3]`` uint8 RGB frames, or ``[B, H, W, 3]`` batches; all the same size.
        fps: frame rate in frames per second.
        codec: ``"h264"`` (mp4, viewable) or ``"lossless"`` (FFV1, use an ``.mkv`` path).
        audio_from: a media file whose audio track is copied into the output, when it has one.

    Returns:
        The number of frames written.
    """
    options = dict(CODECS[codec])
    process = None
    count = 0
    with atomic_path(path) as tmp:
        try:
            for block in frames:
                block = np.asarray(block, dtype=np.uint8)
                block = block[None] if block.ndim == 3 else block
                if process is None:
                    height, width = block.shape[1:3]
                    video = ffmpeg.input(
                        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps
                    )
                    streams = [video]
                    if audio_from is not None:
                        streams.append(ffmpeg.input(str(audio_from)).audio)
                    if codec == "h264" and (width % 2 or height % 2):  # yuv420p needs even sizes
                        streams[0] = video.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
                    extra = {"acodec": "aac", "shortest": None} if audio_from is not None else {}
                    process = (
                        ffmpeg.output(*streams, str(tmp), r=fps, **options, **extra)
                        .overwrite_output()
                        .global_args("-loglevel", "error")
                        .run_async(cmd=ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True)
                    )
                process.stdin.write(np.ascontiguousarray(block).tobytes())
                count += len(block)
        finally:
            if process is not None:
                process.stdin.close()
                stderr = process.stderr.read().decode(errors="replace")
                if process.wait() != 0:
                    raise RuntimeError(f"ffmpeg failed writing {path}: {stderr.strip()}")
        if process is None:
            raise ValueError(f"no frames to write to {path}")
    return count
