"""Write frames to a video file with ffmpeg, streaming (no per-frame files), atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable

import ffmpeg
import numpy as np
from PIL import Image

from sg3pipe.io.atomic import atomic_path
from sg3pipe.video.ffmpeg import ffmpeg_exe

# Output codecs by purpose: `lossless` keeps exact pixels (containers of aligned frames and crops),
# `h264` is what players and browsers show.
CODECS = {
    "lossless": {"vcodec": "ffv1", "pix_fmt": "bgr0"},
    "h264": {"vcodec": "libx264", "pix_fmt": "yuv420p", "crf": 18, "preset": "medium"},
}


class VideoSink:
    """A video being written: ``with VideoSink(path, fps) as sink: sink.write(block)``, so that many videos can
    be fed batch by batch from one pass over the frames. The file appears at ``path`` only when the block ends
    without an error (atomically); an error or an interruption leaves nothing there.

    Args:
        fps: frame rate in frames per second.
        codec: ``"h264"`` (mp4, viewable) or ``"lossless"`` (FFV1, use an ``.mkv`` path).
        audio_from: a media file whose audio track is muxed in (AAC), when it has one; the output ends with the
            shorter of the two.
        audio_start_s: where in ``audio_from`` the audio starts (the clip's start in the source), in seconds.
        still_png: also save the last frame written as a PNG there (atomically, with the video): the image of a
            still-image source, whose "video" has one frame.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        codec: str = "h264",
        audio_from: str | os.PathLike | None = None,
        audio_start_s: float = 0.0,
        still_png: str | os.PathLike | None = None,
    ):
        self.path, self.fps, self.codec, self.audio_from = path, fps, codec, audio_from
        self.still_png, self._last = still_png, None
        self.audio_start_s = audio_start_s
        self.count = 0  # frames written so far
        self._process = None
        self._atomic = atomic_path(path)
        self._tmp = None

    def __enter__(self) -> VideoSink:
        self._tmp = self._atomic.__enter__()
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``[H, W, 3]`` or ``[B, H, W, 3]`` uint8 RGB frames (all videos' frames the same size)."""
        block = np.asarray(block, dtype=np.uint8)
        block = block[None] if block.ndim == 3 else block
        if self._process is None:
            self._process = self._start(*block.shape[1:3])
        self._process.stdin.write(np.ascontiguousarray(block).tobytes())
        self.count += len(block)
        if self.still_png is not None:
            self._last = block[-1].copy()

    def _start(self, height: int, width: int):
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=self.fps)
        streams = [video]
        if self.audio_from is not None:
            streams.append(ffmpeg.input(str(self.audio_from), ss=self.audio_start_s).audio)
        if self.codec == "h264" and (width % 2 or height % 2):  # yuv420p needs even sizes
            streams[0] = video.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
        extra = {"acodec": "aac", "shortest": None} if self.audio_from is not None else {}
        return (
            ffmpeg.output(*streams, str(self._tmp), r=self.fps, **CODECS[self.codec], **extra)
            .overwrite_output()
            .global_args("-loglevel", "error")
            .run_async(cmd=ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True)
        )

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if self._process is not None:
                self._process.stdin.close()
                stderr = self._process.stderr.read().decode(errors="replace")
                if self._process.wait() != 0 and error is None:
                    raise RuntimeError(f"ffmpeg failed writing {self.path}: {stderr.strip()}")
            if self._process is None and error is None:
                raise ValueError(f"no frames to write to {self.path}")
        except BaseException as failure:
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        self._atomic.__exit__(kind, error, traceback)
        if self.still_png is not None and error is None:
            with atomic_path(self.still_png) as tmp:
                Image.fromarray(self._last).save(tmp)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    codec: str = "h264",
    audio_from: str | os.PathLike | None = None,
) -> int:
    """Encode RGB frames into ``path`` (:class:`VideoSink` over an iterable).

    Args:
        frames: iterable of ``[H, W, 3]`` uint8 RGB frames, or ``[B, H, W, 3]`` batches; all the same size.
        fps, codec, audio_from: as :class:`VideoSink`.

    Returns:
        The number of frames written.
    """
    with VideoSink(path, fps, codec, audio_from) as sink:
        for block in frames:
            sink.write(block)
    return sink.count
