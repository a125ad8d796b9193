"""Probe a video with the ffmpeg binary alone (no ffprobe): size, rotation, rate, frame count, audio.

Times are seconds on the player's clock: 0 at the start of the file, as a player's timeline shows it.
Frames are decoded on a constant-rate grid: frame ``k`` of a decode at ``fps`` frames/s is what a player
shows at ``first_frame_s + k / fps``. For constant-rate input at its own rate the grid holds every frame
exactly once; variable-rate input is resampled to the grid by ffmpeg's ``fps`` filter (frames repeated
across gaps, dropped where they come faster).

Probing runs ffmpeg twice:

1. a stream copy of the video packets into ffmpeg's ``framecrc`` listing, plus a decode of the first frame.
   No full decode: it gives ffmpeg's description of the streams, every packet's timestamp (hence the
   frame rate and whether it varies), and the first frame's time and displayed size;
2. a decode of the whole video on its grid, counting frames: the same command ``read_frames`` runs, so
   ``n_frames`` is exactly what it yields, also for damaged files.

A truncated file (an interrupted copy or recording) decodes up to the cut, and ``n_frames`` counts those
frames; ffmpeg's complaints are logged as a warning. The frames the cut removed leave holes in the
timestamps (B-frames are stored after the frame that follows them), so such a file reads as variable-rate;
it is decoded at its own rate, the holes filled by repeating the frame before. An MP4 keeps
its index (``moov``) at its end unless written with ``-movflags +faststart``, so a plain MP4 cut short
cannot be read at all: that is a ``VideoError``.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np

from sg3pipe.video.errors import VideoError, ffmpeg_reason
from sg3pipe.video.ffmpeg import ffmpeg_exe

log = logging.getLogger(__name__)

# A decode that starts later than frame 0 seeks to a keyframe this far before the first wanted frame, so
# that a seek in a file with an imprecise index still lands early enough (the fps filter drops the excess).
SEEK_MARGIN_S = 1.0
# Frame-to-frame intervals that differ from the typical one by more than this fraction (and by more than a
# tick of the file's clock, which rounds e.g. 1001/30000 s intervals) make a video variable-rate.
VFR_TOLERANCE = 0.01
# Rates cameras and editors record at (frames/s), the rates variable-rate input is stated at when close.
CAMERA_RATES = tuple(
    Fraction(rate) for rate in (12, 15, "24000/1001", 24, 25, "30000/1001", 30, 48, 50, "60000/1001", 60, 100, 120)
)
# RGB conversion as a player does it (see decoder_args).
SCALE_FLAGS = "bilinear+accurate_rnd+full_chroma_int"
# How ffmpeg's framecrc listing writes a packet without a presentation time (AV_NOPTS_VALUE).
NOPTS = -(2**63)

# Not a video ffmpeg can open: the fix is a healthy copy of the file.
DAMAGED_FIX = (
    "check that it is a video file; if it is, it is damaged or cut short (an interrupted download or "
    "recording; an MP4 cut short loses its index, the `moov atom`): copy it again from its source"
)


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` found out about a video file."""

    path: str  # absolute path of the file
    width: int  # frame width in pixels, as displayed (after applying the rotation)
    height: int  # frame height in pixels, as displayed
    fps: float  # rate (frames/s) frames are decoded at: the file's rate, or its average rate when variable
    n_frames: int  # number of frames read_frames yields for the whole video at ``fps``
    duration_s: float  # time the decoded frames span: n_frames / fps (s)
    rotation: int  # clockwise degrees (0, 90, 180, 270) a player turns the stored picture; decoding does too
    has_audio: bool  # the file has an audio stream
    variable_fps: bool  # the file's frame intervals vary; decoding resamples them to ``fps``
    codec: str  # ffmpeg's name of the video codec, e.g. "h264"
    pix_fmt: str  # ffmpeg's name of the stored pixel format, e.g. "yuv420p", "gray"
    first_frame_s: float = 0.0  # player time of frame 0 (s); above 0 when e.g. the audio starts first


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Describe the video stream of ``path`` (see the module docstring for how and what the times mean).

    Raises:
        VideoError: the file is missing, empty, not a video ffmpeg can read, has no video stream (e.g.
            audio only), or no frame of it decodes. The message names the file and the fix.
        FFmpegNotFoundError: there is no ffmpeg binary.
    """
    path = Path(path).absolute()
    _check_file(path)
    stream, packets, first_frame = _scan(path)
    fps, variable = _frame_rate(path, packets)
    first_frame_s, width, height = first_frame
    n_frames = _count_frames(path, fps, first_frame_s)
    return VideoInfo(
        path=str(path),
        width=width,
        height=height,
        fps=float(fps),
        n_frames=n_frames,
        duration_s=float(n_frames / fps),
        rotation=stream["rotation"],
        has_audio=stream["has_audio"],
        variable_fps=variable,
        codec=stream["codec"],
        pix_fmt=stream["pix_fmt"],
        first_frame_s=first_frame_s,
    )


def frame_rate(fps: float) -> Fraction:
    """The exact rate ffmpeg is given for ``fps`` frames/s: 25.0 -> 25, 29.97002997 -> 30000/1001."""
    return Fraction(fps).limit_denominator(1001)


def decoder_args(
    path: str | os.PathLike,
    fps: float,
    first_frame_s: float = 0.0,
    first_index: int = 0,
    max_frames: int | None = None,
    size: tuple[int, int] | None = None,
) -> list[str]:
    """The ffmpeg command that decodes ``path`` on its frame grid, from grid frame ``first_index`` on.

    Args:
        fps: grid rate in frames/s; ``first_frame_s``: player time of grid frame 0 (s).
        max_frames: stop after this many frames (None: at the end of the video).
        size: ``(width, height)``: write rgb24 frames of this size to stdout; None: count frames only,
            writing ffmpeg's ``-progress`` report (``frame=N`` lines) to stdout instead.

    Returns:
        The argument list, starting with the ffmpeg executable.
    """
    rate = frame_rate(fps)
    start_s = first_frame_s + float(first_index / rate)
    # Keep timestamps on the player clock (no shift by the seek point), so the grid start and the seek
    # point are on one clock.
    input_options = {"copyts": None, "start_at_zero": None}
    if first_index > 0:
        # Seek to a keyframe before the first wanted frame and let the fps filter drop what comes before
        # `start_time`: the frames then equal those of a decode from the start, also where a gap in
        # variable-rate input makes the first wanted grid frame repeat an earlier video frame.
        input_options.update(ss=max(0.0, start_s - SEEK_MARGIN_S), noaccurate_seek=None)
    video = ffmpeg.input(str(path), **input_options)["V:0"]  # `V`: the first video stream, not cover art
    video = video.filter("fps", fps=str(rate), start_time=start_s)
    if size is None:
        target, output_options = "-", {"format": "null", "progress": "pipe:1"}
    else:
        # An explicit size keeps every frame width x height even if the stream changes resolution midway.
        # Interpolated chroma and rounded arithmetic: swscale's fast default is 1-2 levels dark on 10-bit
        # 4:2:0 input and blocky at colour edges; this costs about 2 ms per 512x512 frame.
        video = video.filter("scale", size[0], size[1], flags=SCALE_FLAGS).filter("format", "rgb24")
        target, output_options = "pipe:1", {"format": "rawvideo"}
    if max_frames is not None:
        output_options["frames:v"] = max_frames
    output = ffmpeg.output(video, target, **output_options)
    return [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning", *output.get_args()]


def _check_file(path: Path) -> None:
    """Fail early, with a precise message, on the inputs ffmpeg would only call 'invalid'."""
    if not path.exists():
        raise VideoError(
            path,
            "the file does not exist",
            "check the path (relative manifest paths start at the manifest's folder)",
        )
    if not path.is_file():
        raise VideoError(path, "it is not a file", "list a video file, not a folder")
    if path.stat().st_size == 0:
        raise VideoError(path, "the file is empty (0 bytes)", "copy it again from its source")


def _scan(path: Path) -> tuple[dict, list[str], tuple[float, int, int]]:
    """One ffmpeg pass: stream description, packet listing and the first decoded frame.

    Returns:
        The video stream's description (see ``_video_stream``), the framecrc lines, and the first frame's
        ``(player time in s, displayed width, displayed height)``.
    """
    source = ffmpeg.input(str(path), copyts=None, start_at_zero=None)
    packets = source["V:0"].output("pipe:1", format="framecrc", c="copy")
    first = source["V:0"].filter("showinfo").output("-", format="null", **{"frames:v": 1})
    args = [
        ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-nostats",
        *ffmpeg.merge_outputs(packets, first).get_args(),
    ]
    result = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if "Input #0" not in result.stderr:
        raise VideoError(path, f"ffmpeg cannot read it ({ffmpeg_reason(result.stderr)})", DAMAGED_FIX)
    # A missing video stream is the clearest of the errors this pass can meet: raise it first.
    stream = _video_stream(path, result.stderr.split("Stream mapping:")[0])
    if result.returncode != 0:
        raise VideoError(path, f"ffmpeg cannot read its video stream ({ffmpeg_reason(result.stderr)})")
    frame = re.search(r"\bn:\s*0\s+pts:\s*\S+\s+pts_time:(\S+).*?\bs:(\d+)x(\d+)", result.stderr)
    if frame is None:
        raise VideoError(path, "not even its first video frame can be decoded", DAMAGED_FIX)
    return stream, result.stdout.splitlines(), (float(frame[1]), int(frame[2]), int(frame[3]))


def _video_stream(path: Path, banner: str) -> dict:
    """Codec, pixel format and rotation of the first video stream in ffmpeg's input description."""
    blocks = re.split(r"\n(?=\s*Stream #)", banner)
    streams = [b for b in blocks if re.match(r"\s*Stream #\S+: (Video|Audio):", b)]
    has_audio = any(": Audio:" in b.splitlines()[0] for b in streams)
    videos = [b for b in streams if ": Video:" in b.splitlines()[0] and "(attached pic)" not in b.splitlines()[0]]
    if not videos:
        what = "only audio" if has_audio else "no video stream"
        raise VideoError(path, f"it has no video stream ({what})", "list a video file with a picture track")
    header = videos[0].splitlines()[0].split(": Video:", 1)[1]
    fields = _split_top_level(header)
    # ffmpeg prints the display matrix as a counter-clockwise angle; players (and the legacy `rotate` tag
    # phones write) turn the picture clockwise by its negative.
    angle = re.search(r"rotation of (-?[\d.]+) degrees", videos[0], re.IGNORECASE)
    rotation = int(round(-float(angle[1]) / 90.0)) * 90 % 360 if angle else 0
    return {
        "codec": fields[0].split()[0],
        "pix_fmt": fields[1].split("(")[0].strip() if len(fields) > 1 else "unknown",
        "rotation": rotation,
        "has_audio": has_audio,
    }


def _split_top_level(text: str) -> list[str]:
    """Split ffmpeg's stream description at commas outside brackets: 'yuv420p(tv, bt709)' stays whole."""
    fields, depth, current = [], 0, []
    for char in text:
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    fields.append("".join(current).strip())
    return fields


def _frame_rate(path: Path, lines: list[str]) -> tuple[Fraction, bool]:
    """The decode rate and whether the rate varies, from the framecrc packet listing.

    The rate varies when the intervals between the sorted timestamps do. The rate is the average: frames
    over the time from the first timestamp to one typical (median) interval after the last, where a gap
    of k typical intervals counts as k frames; then stated as a standard rate (see ``_stated_rate``).
    """
    timebase = next((Fraction(line.split(":", 1)[1].strip()) for line in lines if line.startswith("#tb 0:")), None)
    rows = [line.split(",") for line in lines if line and not line.startswith("#")]
    if timebase is None or not rows:
        raise VideoError(path, "its video stream holds no frames", DAMAGED_FIX)
    dts, pts, durations = (np.array([int(row[i]) for row in rows], dtype=np.int64) for i in (1, 2, 3))
    # AVI and raw H.264 give packets no presentation time; their decode times have the same spacing.
    times = np.sort(pts if (pts != NOPTS).all() else dts)
    intervals = np.diff(times)
    typical = Fraction(float(np.median(intervals))) if len(intervals) else Fraction(int(durations[0]))
    if typical <= 0:
        raise VideoError(path, "its frames carry no usable timestamps")
    # An interval of a whole number of typical ones is frames missing (dropped by the camera, or cut off
    # before a truncated file's end), not a slower rate: count them as frames.
    multiples = intervals / float(typical)
    whole = np.rint(multiples)
    missing = int(np.where((whole >= 2) & (np.abs(multiples - whole) < 0.1), whole - 1, 0).sum())
    measured = (len(times) + missing) / ((int(times[-1] - times[0]) + typical) * timebase)
    variable = bool((np.abs(intervals - float(typical)) > max(1.0, VFR_TOLERANCE * float(typical))).any())
    return _stated_rate(measured, variable), variable


def _stated_rate(measured: Fraction, variable: bool) -> Fraction:
    """The rate to decode at, given the ``measured`` average rate.

    A constant rate is exact up to the rounding of the file's clock: within 0.1 % of an integer or NTSC
    (n * 1000/1001) rate, that rate. A variable rate is stated as the nearest camera rate within 2 %
    (phones record "30 fps" at 29.5-30 frames/s). Otherwise the measured rate, rounded to a fraction with
    denominator <= 1001.
    """
    if variable:
        candidates, tolerance = CAMERA_RATES, Fraction(2, 100)
    else:
        nearest = round(measured)
        candidates = (Fraction(nearest), Fraction(round(measured * Fraction(1001, 1000)) * 1000, 1001))
        tolerance = Fraction(1, 1000)
    best = min(candidates, key=lambda rate: abs(measured - rate))
    return best if best > 0 and abs(measured / best - 1) <= tolerance else measured.limit_denominator(1001)


def _count_frames(path: Path, fps: Fraction, first_frame_s: float) -> int:
    """Decode the whole video on its grid and count the frames (see the module docstring for why)."""
    result = subprocess.run(
        decoder_args(path, float(fps), first_frame_s), capture_output=True, text=True, errors="replace"
    )
    counts = re.findall(r"^frame=(\d+)\s*$", result.stdout, re.MULTILINE)
    n_frames = int(counts[-1]) if counts else 0
    if result.returncode != 0 or n_frames == 0:
        raise VideoError(path, f"its video stream cannot be decoded ({ffmpeg_reason(result.stderr)})")
    if result.stderr.strip():
        log.warning(
            "%s: ffmpeg reported problems decoding it (a truncated or damaged file?); using the %d frames "
            "that decode. ffmpeg said: %s",
            path,
            n_frames,
            ffmpeg_reason(result.stderr),
        )
    return n_frames
