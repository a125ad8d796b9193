"""Throughput of the synthetic face renderer (images/s), and whether dlib finds its faces.

Usage: python benchmarks/bench_renderer.py [--resolution 64] [--batch 200] [--repeats 5] [--threads N] [--dlib 100]
Prints images/s at the given resolution with torch's thread count (default: torch's own, 2 on the dev machines).
On a shared machine pass --threads 1: torch's intra-op threads wait for each other when a core is busy.
"""

from __future__ import annotations

import argparse
import time

import torch

from sg3pipe.synth.renderer import render, sample_params


def throughput(resolution: int, batch: int, repeats: int) -> float:
    """Best-of-``repeats`` images per second rendering ``batch`` random faces with random transforms."""
    params = sample_params(batch, 0)
    angle = torch.empty(batch).uniform_(-20, 20)
    params[:, -4] = angle  # angle_deg: exercise the general (rotated) path
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        render(params, resolution)
        best = min(best, time.perf_counter() - start)
    return batch / best


def dlib_detection_rate(count: int, resolution: int = 256) -> tuple[float, float]:
    """Fraction of ``count`` random faces dlib's HOG detector finds, and the mean landmark error in pixels."""
    import importlib.util

    import dlib
    import numpy as np

    models = importlib.util.find_spec("face_recognition_models").submodule_search_locations[0] + "/models/"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models + "shape_predictor_68_face_landmarks.dat")
    out = render(sample_params(count, 1), resolution)
    images = ((out.images + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    found, errors = 0, []
    for image, truth in zip(images, out.landmarks.numpy(), strict=True):
        image = np.ascontiguousarray(image)  # dlib silently misreads strided arrays
        boxes = detector(image, 1)
        if len(boxes):
            found += 1
            shape = predictor(image, boxes[0])
            points = np.array([(p.x, p.y) for p in shape.parts()])
            errors.append(np.linalg.norm(points - truth, axis=1).mean())
    return found / count, float(np.mean(errors)) if errors else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--dlib", type=int, default=0, help="also run dlib on this many faces at 256 px")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rate = throughput(args.resolution, args.batch, args.repeats)
    print(f"{rate:.0f} images/s at {args.resolution}x{args.resolution} ({torch.get_num_threads()} threads)")
    if args.dlib:
        found, error = dlib_detection_rate(args.dlib)
        print(f"dlib HOG finds {found:.0%} of {args.dlib} faces at 256 px; mean landmark error {error:.1f} px")


if __name__ == "__main__":
    main()
