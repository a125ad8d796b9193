"""Speed of the front end: decode, landmarks, both crops and the transforms of a 512x512 25-fps clip.

Runs sg3pipe's frames stage (``sg3pipe.frames.build_frames``: probe, two streaming decodes, one small region
detection per frame, two antialiased warps per frame, two FFV1 containers, the table) and, for comparison, the
official recipe (yuval-alaluf/stylegan3-editing ``inversion/video/video_handler.py`` and
``utils/alignment_utils.py``), re-implemented here: frames written as JPEG files, then per
frame a whole-frame detection (dlib HOG, upsampled once as the FFHQ script does) and landmarks, the aligned and
the frame-0-quad crops cut the FFHQ way (shrink, crop, reflect-pad, PIL quad transform) and saved as JPEG, then
landmarks re-detected on the aligned crop and on the crop, the crop rotated by the eye-line difference, written
to disk and read back, and detected a fourth time for the translation. Both run on 2 CPU cores (the process
and its ffmpeg children are pinned). Prints frames/s and the ratio; not a timed test.

    python benchmarks/bench_frontend.py [--seconds 12] [--sizes 64 256 1024] [--official-frames 25]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from sg3pipe.faces.alignment import ffhq_quad, quad_axes
from sg3pipe.faces.landmarks import DlibPredictor, HogDetector
from sg3pipe.frames import build_frames
from sg3pipe.synth.photo_clip import make_photo_clip


def pin_two_cores() -> list[int]:
    """Run this process (and the ffmpeg processes it starts) on at most two CPU cores."""
    cores = sorted(os.sched_getaffinity(0))[:2]
    os.sched_setaffinity(0, cores)
    return cores


def timed(run) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process and its finished children, e.g. ffmpeg) of ``run()``.

    On a shared machine the wall time depends on the other load; the CPU time much less.
    """
    before, start = os.times(), time.perf_counter()
    run()
    after, wall = os.times(), time.perf_counter() - start
    cpu = sum(after[:4]) - sum(before[:4])  # user, system, children's user, children's system
    return wall, cpu


def run_sg3pipe(video: Path, out: Path, size: int) -> None:
    """build_frames on ``video`` with crops of ``size`` pixels."""
    build_frames(video, out / "frames.parquet", out / "aligned.mkv", out / "crops.mkv", {"align": {"size": size}})


class OfficialRecipe:
    """The official video front end: yuval-alaluf/stylegan3-editing ``inversion/video/video_handler.py`` (frames,
    aligned and cropped frames) and ``get_stylegan_transform`` of ``utils/alignment_utils.py``."""

    def __init__(self, size: int):
        self.size = size
        self.detector = HogDetector(upsample=1)  # the FFHQ script runs dlib's detector with one upsampling
        self.predictor = DlibPredictor()
        self.detections = 0

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """Whole-image detection and the first face's 68 landmarks."""
        self.detections += 1
        found = self.detector(image)
        return self.predictor(image, found.boxes[:1])[0] if len(found.boxes) else None

    def cut(self, image: Image.Image, quad: np.ndarray) -> Image.Image:
        """The FFHQ recipe: shrink when the quad is large, crop around it, reflect-pad, quad transform."""
        _, x, _ = quad_axes(quad)
        qsize = 2 * np.linalg.norm(x)
        shrink = int(np.floor(qsize / self.size * 0.5))
        if shrink > 1:
            image = image.resize((image.width // shrink, image.height // shrink), Image.LANCZOS)
            quad, qsize = quad / shrink, qsize / shrink
        border = max(int(np.rint(qsize * 0.1)), 3)
        x0, y0 = np.floor(quad.min(axis=0)).astype(int) - border
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + border
        crop = (max(x0, 0), max(y0, 0), min(x1, image.width), min(y1, image.height))
        image = image.crop(crop)
        quad = quad - crop[:2]
        pad = (max(-x0, 0), max(-y0, 0), max(x1 - crop[2], 0), max(y1 - crop[3], 0))
        if max(pad) > 0:
            array = np.pad(np.asarray(image), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
            blurred = cv2.GaussianBlur(array, (0, 0), qsize * 0.02)
            array = (array * 0.5 + blurred * 0.5).astype(np.uint8)  # FFHQ blends the padding towards a blur
            image = Image.fromarray(array)
            quad = quad + pad[:2]
        return image.transform((self.size, self.size), Image.QUAD, (quad + 0.5).flatten(), Image.BILINEAR)

    def run(self, video: Path, work: Path, n_frames: int) -> None:
        """Steps 1-4 for the first ``n_frames`` frames of ``video``, files under ``work``."""
        capture = cv2.VideoCapture(str(video))
        paths = []
        for k in range(n_frames):
            ok, frame = capture.read()
            if not ok:
                break
            paths.append(work / f"frame_{k:05d}.jpg")
            cv2.imwrite(str(paths[-1]), frame)
        crop_quad = None
        for k, path in enumerate(paths):
            image = Image.open(path).convert("RGB")
            landmarks = self.landmarks(np.asarray(image))
            if landmarks is None:
                continue  # the official code drops the frame
            quad = ffhq_quad(landmarks)
            crop_quad = quad if crop_quad is None else crop_quad
            aligned, cropped = self.cut(image, quad), self.cut(image, crop_quad)
            aligned.save(work / f"aligned_{k:05d}.jpg")
            cropped.save(work / f"cropped_{k:05d}.jpg")
            self.transform(np.asarray(aligned), cropped, work)

    def transform(self, aligned: np.ndarray, cropped: Image.Image, work: Path) -> tuple[float, float, float]:
        """Rotation from the eye lines, translation from the left eye after a rotated copy on disk."""
        a, c = self.landmarks(aligned), self.landmarks(np.asarray(cropped))
        if a is None or c is None:
            return (np.nan, np.nan, np.nan)

        def eye_angle(lm):
            d = lm[42:48].mean(axis=0) - lm[36:42].mean(axis=0)
            return np.degrees(np.arctan2(d[1], d[0]))

        angle = eye_angle(c) - eye_angle(a)
        cropped.rotate(angle).save(work / "rotated.jpg")  # the official code's temp file
        r = self.landmarks(np.asarray(Image.open(work / "rotated.jpg").convert("RGB")))
        if r is None:
            return (angle, np.nan, np.nan)
        tx, ty = (a[36:42].mean(axis=0) - r[36:42].mean(axis=0)) / self.size
        return angle, tx, ty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the 512x512 25-fps test clip")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024], help="crop sizes (align.size)")
    parser.add_argument("--official-frames", type=int, default=25, help="frames timed for the official recipe")
    args = parser.parse_args()
    cores = pin_two_cores()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "astronaut.mp4"
        make_photo_clip(video, tmp / "truth.parquet", size=512, seconds=args.seconds, fps=25.0)
        n_frames = int(round(args.seconds * 25))
        print(f"clip: 512x512, 25 fps, {n_frames} frames (h264); CPU cores {cores}")
        run_sg3pipe(video, tmp / "warmup", args.sizes[0])  # loads the dlib models once, as a long run would
        print("fps: frames per wall-clock second; cpu ms: CPU time per frame, all processes (load-independent)")
        print(
            f"{'align.size':>10} {'sg3pipe fps':>12} {'cpu ms':>7} {'official fps':>13} {'cpu ms':>7} "
            f"{'speed-up wall':>14} {'speed-up cpu':>13} {'official det/frame':>19}"
        )
        for size in args.sizes:
            wall, cpu = timed(lambda size=size: run_sg3pipe(video, tmp / f"ours{size}", size))
            ours, ours_cpu = n_frames / wall, 1000 * cpu / n_frames
            work = tmp / f"official{size}"
            work.mkdir()
            recipe = OfficialRecipe(size)
            wall, cpu = timed(lambda recipe=recipe, work=work: recipe.run(video, work, args.official_frames))
            official, official_cpu = args.official_frames / wall, 1000 * cpu / args.official_frames
            per_frame = recipe.detections / args.official_frames
            print(
                f"{size:>10} {ours:>12.1f} {ours_cpu:>7.1f} {official:>13.2f} {official_cpu:>7.1f} "
                f"{ours / official:>13.1f}x {official_cpu / ours_cpu:>12.1f}x {per_frame:>19.1f}"
            )


if __name__ == "__main__":
    main()
