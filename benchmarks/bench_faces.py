"""Following several faces: MultiFaceTracker against the truth of clips with 2 and 3 faces, and its speed against
the one-face FaceTracker on the same frames.

Clips: the synthetic 2- and 3-face clips of ``sg3pipe.synth.multi_face`` (faces cross, hide each other and leave
the frame), written to h264 and decoded as the workflow sees them, and the astronaut and Grace Hopper filmed side
by side (``two_photo_frames``; its truth is dlib's landmarks on the still photos, moved with the camera, and both
faces count as visible in every frame). MultiFaceTracker runs with dlib's HOG detector, its 68-point predictor
and the identity model (dlib's descriptors), ``count_score`` 0.2 on the synthetic faces (as the tests: dlib
scores them lower than photos) and the default 0.5 on the photos. Per clip it prints the id switches, the
visible face-frames tracked, the roll error of the matched FFHQ quads, the whole-frame detections and frames/s
(``sg3pipe.metrics.tracking``), then FaceTracker's frames/s on the same frames and how many times longer a frame
takes the multi-face tracker. One run each, in this process; not a timed test.

    python benchmarks/bench_faces.py [--seed 1] [--photo-frames 75]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sg3pipe.faces.landmarks import DlibPredictor, HogDetector
from sg3pipe.faces.multi_tracking import MultiFaceTracker
from sg3pipe.faces.tracking import FaceTracker
from sg3pipe.io.tables import read_table
from sg3pipe.metrics.identity import IdentityModel
from sg3pipe.metrics.tracking import id_switches, match_tracks, tracked_fraction, truth_arrays
from sg3pipe.synth.multi_face import MultiFaceSpec, two_photo_frames, write_multi_face_clip
from sg3pipe.video.decode import read_all_frames

SYNTH_SCORE = 0.2  # count_score for the synthetic faces (dlib's HOG scores the dark-skinned one about 0.35)
PHOTO_SCORE = 0.5  # the trackers' default, for photographed faces


def synthetic_clip(folder: Path, seed: int, faces: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic clip written to h264 and decoded: frames ``[T, H, W, 3]`` uint8, truth landmarks
    ``[N, T, 68, 2]`` and visible ``[N, T]``."""
    video, truth = folder / f"faces{faces}.mp4", folder / f"faces{faces}.parquet"
    write_multi_face_clip(video, truth, MultiFaceSpec(seed=seed, faces=faces))
    landmarks, visible, _ = truth_arrays(read_table(truth)[0])
    return read_all_frames(video), landmarks, visible


def timed_updates(tracker, frames: np.ndarray) -> tuple[list, float]:
    """``tracker.update`` on every frame: the results and the wall seconds taken."""
    start = time.perf_counter()
    found = [tracker.update(frame) for frame in frames]
    return found, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic clips (the tests use 1)")
    parser.add_argument("--photo-frames", type=int, default=75, help="frames of the two-photo clip (25 fps)")
    args = parser.parse_args()
    detector, predictor, identity = HogDetector(), DlibPredictor(), IdentityModel()
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = [synthetic_clip(Path(tmp), args.seed, faces) for faces in (2, 3)]
    photos, photo_truth = two_photo_frames(args.photo_frames)
    clips = [
        ("synthetic 2 faces", *synthetic[0], SYNTH_SCORE),
        ("synthetic 3 faces", *synthetic[1], SYNTH_SCORE),
        ("two photos", photos, photo_truth, np.ones(photo_truth.shape[:2], bool), PHOTO_SCORE),
    ]
    print(
        "roll: |roll of the tracked FFHQ quad - truth's|, degrees; detections: whole-frame detections; "
        "x one face: multi-face time per frame / one-face time per frame"
    )
    print(
        f"{'clip':<18} {'faces':>5} {'frames':>6} {'id switches':>11} {'tracked %':>9} {'of visible':>10} "
        f"{'roll med':>8} {'roll p95':>8} {'detections':>10} {'fps':>6} {'one-face fps':>12} {'x one face':>10}"
    )
    for name, frames, landmarks, visible, score in clips:
        n_faces = len(landmarks)
        options = {"max_faces": n_faces, "count_score": score, "identity": identity}
        MultiFaceTracker(detector, predictor, **options).update(frames[0])  # warm-up: the models' first calls
        multi = MultiFaceTracker(detector, predictor, **options)
        found, multi_s = timed_updates(multi, frames)
        _, single_s = timed_updates(FaceTracker(detector, predictor, count_score=score), frames)
        matched, roll = match_tracks(found, landmarks)
        print(
            f"{name:<18} {n_faces:>5} {len(frames):>6} {id_switches(matched):>11} "
            f"{100 * tracked_fraction(matched, visible):>9.1f} {int(visible.sum()):>10} "
            f"{np.median(roll):>8.2f} {np.percentile(roll, 95):>8.2f} {multi.detections:>10} "
            f"{len(frames) / multi_s:>6.1f} {len(frames) / single_s:>12.1f} {multi_s / single_s:>10.2f}"
        )


if __name__ == "__main__":
    main()
