"""Throughput of probing and decoding a 512x512 25-fps H.264 clip (frames/s), as the frames stage does it.

Usage: python benchmarks/bench_decode.py [--size 512] [--seconds 20] [--batch 64] [--repeats 3]
Makes the clip with ffmpeg in a temporary folder, then prints best-of-``repeats`` frames/s for
``probe_video`` (a packet scan plus a counting decode) and for ``read_frames`` (decode, resampling grid,
RGB conversion and the pipe into numpy), and the CPU time per frame (ffmpeg plus Python, all cores).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from sg3pipe.video.decode import read_frames
from sg3pipe.video.ffmpeg import ffmpeg_exe
from sg3pipe.video.probe import probe_video


def make_clip(path: Path, size: int, seconds: float) -> None:
    """A ``size`` x ``size`` 25-fps H.264 clip of ffmpeg's moving test pattern (CRF 20, like a camera)."""
    source = f"testsrc2=size={size}x{size}:rate=25:duration={seconds}"
    encode = ["-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source, *encode],
        check=True,
    )


def cpu_seconds() -> float:
    """CPU time used so far by this process and its finished children (s)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def best_rate(job, frames: int, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` frames/s of ``job()`` and its CPU milliseconds per frame."""
    best, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        wall, used = time.perf_counter(), cpu_seconds()
        job()
        best, cpu = min(best, time.perf_counter() - wall), min(cpu, cpu_seconds() - used)
    return frames / best, 1000 * cpu / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        make_clip(clip, args.size, args.seconds)
        info = probe_video(clip)

        def decode() -> None:
            for _ in read_frames(clip, info, batch_size=args.batch):
                pass

        probe_fps, probe_ms = best_rate(lambda: probe_video(clip), info.n_frames, args.repeats)
        decode_fps, decode_ms = best_rate(decode, info.n_frames, args.repeats)
    print(f"clip: {info.n_frames} frames, {info.width}x{info.height}, {info.fps:g} fps, {info.codec}")
    print(f"probe_video: {probe_fps:8.0f} frames/s  ({probe_ms:.2f} ms CPU per frame)")
    print(f"read_frames: {decode_fps:8.0f} frames/s  ({decode_ms:.2f} ms CPU per frame)")


if __name__ == "__main__":
    main()
