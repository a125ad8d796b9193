"""Write frames to a video file with ffmpeg, streaming (no per-frame files), atomically.

The frames decide a video's length: ``count / fps`` seconds. A source's audio is muxed in afterwards, in a
second ffmpeg pass that copies the encoded frames and fits every audio stream to that length: silence where the
audio starts late or ends early, cut where it runs on (:func:`mux_audio`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable
from fractions import Fraction

import ffmpeg
import numpy as np
from PIL import Image

from sg3pipe.io.atomic import atomic_path
from sg3pipe.video.errors import ffmpeg_reason
from sg3pipe.video.ffmpeg import ffmpeg_exe
from sg3pipe.video.probe import frame_rate

# Output codecs by purpose: `lossless` keeps exact pixels (containers of aligned frames and crops),
# `h264` is what players and browsers show.
CODECS = {
    "lossless": {"vcodec": "ffv1", "pix_fmt": "bgr0"},
    "h264": {"vcodec": "libx264", "pix_fmt": "yuv420p", "crf": 18, "preset": "medium"},
}


class VideoSink:
    """A video being written: ``with VideoSink(path, fps) as sink: sink.write(block)``, so that many videos can
    be fed batch by batch from one pass over the frames. The file appears at ``path`` only when the block ends
    without an error (atomically); an error or an interruption leaves nothing there. When ffmpeg fails (a full disk,
    a file size limit), :meth:`write` or the end of the block raises a ``RuntimeError`` naming ``path`` and
    ffmpeg's reason.

    Args:
        fps: frame rate in frames per second.
        codec: ``"h264"`` (mp4, yuv420p, viewable; a frame with an odd side gains a copy of its last column or
            row) or ``"lossless"`` (FFV1, use an ``.mkv`` path).
        audio_from: a media file whose audio streams (all of them, AAC-encoded) are muxed in, each fitted to the
            video's length (:func:`mux_audio`); a file without audio adds none.
        audio_start_s: the player time in ``audio_from`` (s from the start of the file, as
            ``sg3pipe.video.probe`` counts it) of the first frame written: the audio from there on plays with it.
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
        self._outcome = None  # what _stop found: why ffmpeg failed, "" when it did not
        self._atomic = atomic_path(path)
        self._tmp = None  # the atomic temporary of the output
        self._frames_path = None  # where the frames are encoded: the temporary, or beside it when audio follows

    def __enter__(self) -> VideoSink:
        self._tmp = self._atomic.__enter__()
        self._frames_path = self._tmp
        if self.audio_from is not None:
            self._frames_path = self._tmp.with_name(f"{self._tmp.stem}.frames{self._tmp.suffix}")
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``[H, W, 3]`` or ``[B, H, W, 3]`` uint8 RGB frames (all videos' frames the same size)."""
        block = np.asarray(block, dtype=np.uint8)
        block = block[None] if block.ndim == 3 else block
        if self._process is None:
            self._process = self._start(*block.shape[1:3])
        try:
            self._process.stdin.write(np.ascontiguousarray(block).tobytes())
        except OSError as error:  # ffmpeg stopped taking frames: it failed (a full disk, a file size limit)
            raise RuntimeError(f"ffmpeg failed writing {self.path}: {self._stop()}") from error
        self.count += len(block)
        if self.still_png is not None:
            self._last = block[-1].copy()

    def _start(self, height: int, width: int):
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=self.fps)
        right, bottom = (width % 2, height % 2) if self.codec == "h264" else (0, 0)
        if right or bottom:
            # yuv420p has one chroma sample per 2x2 pixels, so H.264 (and every codec a browser plays) needs even
            # sides: the frame gains a column or row, a copy of its last one (not black: no dark line at the edge).
            video = video.filter("pad", width + right, height + bottom)
            video = video.filter("fillborders", right=right, bottom=bottom, mode="smear")
        return (
            ffmpeg.output(video, str(self._frames_path), r=self.fps, **CODECS[self.codec])
            .overwrite_output()
            .global_args("-loglevel", "error")
            .run_async(cmd=ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True)
        )

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if self._process is not None:
                if error is not None:
                    self._process.kill()  # the file is discarded: no need to encode the frames ffmpeg still holds
                reason = self._stop()
                if reason and error is None:
                    raise RuntimeError(f"ffmpeg failed writing {self.path}: {reason}")
            if self._process is None and error is None:
                raise ValueError(f"no frames to write to {self.path}")
            if self._frames_path != self._tmp and error is None:
                duration_s = self.count / frame_rate(self.fps)
                try:
                    mux_audio(self._frames_path, self.audio_from, self.audio_start_s, duration_s, self._tmp)
                except RuntimeError as failure:
                    raise RuntimeError(f"could not write {self.path}: {failure}") from failure
        except BaseException as failure:
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        finally:
            if self._frames_path != self._tmp:
                self._frames_path.unlink(missing_ok=True)
        self._atomic.__exit__(kind, error, traceback)
        if self.still_png is not None and error is None:
            with atomic_path(self.still_png) as tmp:
                Image.fromarray(self._last).save(tmp)

    def _stop(self) -> str:
        """Close ffmpeg's input and wait for it to end; returns why it failed (empty when it did not), once."""
        if self._outcome is None:
            with contextlib.suppress(OSError):  # a pipe ffmpeg no longer reads fails to flush; it is closed anyway
                self._process.stdin.close()
            stderr = self._process.stderr.read().decode(errors="replace")
            self._outcome = exit_reason(self._process.wait(), stderr)
        return self._outcome


def exit_reason(returncode: int, stderr: str) -> str:
    """Why an ffmpeg run failed, from its exit status and messages (ffmpeg_reason); empty when it succeeded. A
    signal names itself: a file size limit (``ulimit -f``) kills ffmpeg with SIGXFSZ before it can say a word."""
    if returncode == 0:
        return ""
    if returncode < 0:
        number = -returncode
        name = signal.Signals(number).name if number in set(signal.Signals) else f"signal {number}"
        return f"ffmpeg was killed by {name} ({signal.strsignal(number) or 'no description'})"
    return ffmpeg_reason(stderr)


def mux_audio(
    video: str | os.PathLike,
    audio_from: str | os.PathLike,
    audio_start_s: float,
    duration_s: Fraction,
    path: str | os.PathLike,
) -> None:
    """Write ``path``: the video stream of ``video`` (copied, every frame kept) with every audio stream of
    ``audio_from`` from player time ``audio_start_s`` (s) on, AAC-encoded and fitted to ``duration_s`` (s).

    Each audio stream starts with the first frame: a stream that starts later in the source than
    ``audio_start_s`` is preceded by silence (so it stays in sync), one that ends early is padded with silence,
    one that runs on is cut. Its encoded length can exceed ``duration_s`` by less than one AAC frame (1024
    samples). The sample rates and channel layouts are the source's.
    """
    seconds = f"{float(duration_s):.6f}"
    # Input seeking counts from the file's start, the player clock; the audio's timestamps then count from
    # `audio_start_s`, and aresample fills any gap before the first sample (first_pts=0).
    fit = f"aresample=async=1:first_pts=0,apad=whole_dur={seconds},atrim=end={seconds}"
    args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(video)]
    args += ["-ss", f"{audio_start_s:.6f}", "-i", str(audio_from)]
    args += ["-map", "0:v", "-map", "1:a?", "-c:v", "copy", "-c:a", "aac", "-af", fit, str(path)]
    result = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        reason = exit_reason(result.returncode, result.stderr)
        raise RuntimeError(f"ffmpeg failed adding the audio of {audio_from} to {path}: {reason}")


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
