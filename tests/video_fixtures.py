"""Small test videos made on the fly with the ffmpeg binary, with content a test can read back.

Every frame shows a marker pattern: a red square at the top left, a green one at the top right, a blue one at
the bottom left (so any rotation or flip shows), and a gray middle band whose level encodes the source frame
number ``n`` as ``LEVEL0 + LEVEL_STEP * n`` (so a test can tell which frame it got, also after resampling).
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from sg3pipe.video.ffmpeg import ffmpeg_exe

WIDTH, HEIGHT = 64, 48  # stored size of the test videos (pixels)
BOX = 16  # side of the coloured corner squares (pixels)
LEVEL0, LEVEL_STEP = 16, 3  # gray level of source frame n: LEVEL0 + LEVEL_STEP * n (n < 75)
# Show times (s) of the 50 frames of make_vfr_video: every 40 ms, then from frame 25 on every 100 ms.
VFR_TIMES = np.array([0.04 * n if n < 25 else 1.0 + 0.1 * (n - 25) for n in range(50)])


def run_ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; a failure shows its message."""
    result = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def pattern_filter(width: int = WIDTH, height: int = HEIGHT) -> str:
    """The lavfi filter chain drawing the marker pattern on an input frame of ``width`` x ``height``."""
    band = f"between(Y,{BOX},{height - BOX - 1})*between(X,{BOX},{width - BOX - 1})"
    level = f"{LEVEL0}+{LEVEL_STEP}*N"
    corner = {
        "tl": f"lt(X,{BOX})*lt(Y,{BOX})",
        "tr": f"gte(X,{width - BOX})*lt(Y,{BOX})",
        "bl": f"lt(X,{BOX})*gte(Y,{height - BOX})",
    }
    red = f"if({corner['tl']},255,if({band},{level},0))"
    green = f"if({corner['tr']},255,if({band},{level},0))"
    blue = f"if({corner['bl']},255,if({band},{level},0))"
    return f"format=gbrp,geq=r='{red}':g='{green}':b='{blue}'"


def make_video(
    path: Path,
    *,
    fps: str = "25",
    frames: int = 50,
    vf: str | None = None,
    audio: bool = False,
    output_args: tuple[str, ...] = ("-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p"),
) -> Path:
    """Encode ``frames`` frames of the marker pattern at ``fps`` frames/s into ``path``.

    Args:
        fps: frame rate as ffmpeg writes it ("25", "30000/1001").
        vf: extra filters applied after the pattern (e.g. ``setpts`` for variable rate, ``transpose``).
        audio: add a sine-tone AAC track as long as the video.
        output_args: codec options (default: near-lossless H.264).
    """
    seconds = float(frames / Fraction(fps))
    source = f"color=c=black:s={WIDTH}x{HEIGHT}:r={fps}:d={seconds}"
    chain = pattern_filter() + (f",{vf}" if vf else "")
    inputs = ["-f", "lavfi", "-i", source]
    encode = ["-vf", chain, "-frames:v", str(frames), *output_args]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        encode += ["-c:a", "aac"]
    run_ffmpeg(*inputs, *encode, str(path))
    return path


def make_vfr_video(path: Path) -> Path:
    """A variable-rate Matroska video: source frame n is shown at ``VFR_TIMES[n]`` (exact, 1 ms clock)."""
    setpts = "settb=1/1000,setpts='if(lt(N,25),N*40,1000+(N-25)*100)'"
    timing = ("-fps_mode", "vfr", "-enc_time_base", "1/1000")
    return make_video(path, vf=setpts, output_args=(*timing, "-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p"))


def make_dropped_video(path: Path) -> Path:
    """A 25-fps MP4 whose frames 10 and 11 were dropped; the others keep their times (a hole of 3 frames)."""
    drop = "select='not(between(n,10,11))'"
    return make_video(path, vf=drop, output_args=("-fps_mode", "passthrough", "-c:v", "libx264", "-crf", "10"))


def delay_video(source: Path, path: Path, seconds: float) -> Path:
    """Copy ``source`` (video and audio) into ``path`` with its video starting ``seconds`` after its audio."""
    inputs = ["-itsoffset", str(seconds), "-i", str(source), "-i", str(source)]
    run_ffmpeg(*inputs, "-map", "0:v", "-map", "1:a", "-c", "copy", str(path))
    return path


def tag_rotation(source: Path, path: Path, clockwise: int) -> Path:
    """Copy ``source`` into ``path`` with rotation metadata: players turn it ``clockwise`` degrees."""
    # ffmpeg >= 6 sets the display matrix with -display_rotation (counter-clockwise degrees); older ones
    # take the legacy `rotate` tag (clockwise), which newer ones ignore.
    try:
        run_ffmpeg("-display_rotation", str(-clockwise), "-i", str(source), "-c", "copy", str(path))
    except AssertionError:
        run_ffmpeg("-i", str(source), "-c", "copy", "-metadata:s:v:0", f"rotate={clockwise}", str(path))
    return path


def frame_numbers(images: np.ndarray) -> np.ndarray:
    """Source frame number of each ``[B, H, W, 3]`` image, read from its gray band (int64 ``[B]``)."""
    height, width = images.shape[1:3]
    band = images[:, height // 2 - 2 : height // 2 + 2, width // 2 - 4 : width // 2 + 4].astype(np.float64)
    return np.rint((band.mean(axis=(1, 2, 3)) - LEVEL0) / LEVEL_STEP).astype(np.int64)


def corner_colours(image: np.ndarray) -> dict[str, np.ndarray]:
    """Mean RGB of the four corner squares of an ``[H, W, 3]`` image, keyed tl, tr, bl, br."""
    h, w, b = image.shape[0], image.shape[1], BOX
    patches = {
        "tl": image[2 : b - 2, 2 : b - 2],
        "tr": image[2 : b - 2, w - b + 2 : w - 2],
        "bl": image[h - b + 2 : h - 2, 2 : b - 2],
        "br": image[h - b + 2 : h - 2, w - b + 2 : w - 2],
    }
    return {name: patch.reshape(-1, 3).mean(axis=0) for name, patch in patches.items()}


def assert_upright(image: np.ndarray) -> None:
    """Assert ``image`` shows the marker pattern upright: red top left, green top right, blue bottom left."""
    colours = corner_colours(image)
    expected = {"tl": (255, 0, 0), "tr": (0, 255, 0), "bl": (0, 0, 255), "br": (0, 0, 0)}
    for name, rgb in expected.items():
        assert np.abs(colours[name] - rgb).max() < 40, (name, colours[name])
