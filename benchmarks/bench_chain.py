"""End-to-end speed of the per-video chain (frames, encode, render: PTI, edits, smoothing, videos) on a bundled
sample clip:
the workflow's batched settings against the same chain one frame at a time (the official code's way: decoding,
inversion and rendering with batch 1), both real Snakemake runs of the repository's workflow, one after the other
in this benchmark.

Each run has its own folder; the time of each per-video job is its `benchmark:` record (wall seconds), so the
model-level jobs both runs share (direction finding, the generator preview) are left out. PTI, inside the render
job, is the method's training (batch 2 in both) and costs the same in both runs. Prints seconds per rule, frames/s
of the chain, and the ratio. What it measured, and why the frames job gains least: docs/results.md.

    python benchmarks/bench_chain.py
    python benchmarks/bench_chain.py --frames 100 --pti-steps 100
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PER_VIDEO_RULES = ("frames", "encode", "render")
ONE_AT_A_TIME = {"ingest": {"batch_size": 1}, "encode": {"batch_size": 1}, "render": {"batch": 1}}


def run_chain(folder: Path, clip: Path, frames: int, pti_steps: int, settings: dict) -> dict[str, float]:
    """Run the chain for ``clip``'s first ``frames`` frames in ``folder`` with ``settings`` over the repository's
    config; returns the wall seconds of each per-video rule's job."""
    folder.mkdir(parents=True)
    (folder / "manifest.tsv").write_text(f"id\tpath\tmax_frames\nclip\t{clip}\t{frames}\n")
    overrides = {
        "samples": str(folder / "manifest.tsv"),
        "directions": {"samples": 200, "chunk": 200, "batch": 50, "ratio": 0.1},
        "pti": {"steps": pti_steps, "checkpoint_every": pti_steps},
        **settings,
    }
    (folder / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    command = [
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(folder),
        "--workflow-profile", "none", "--cores", "2", "results/clip/metrics.parquet",
        "--configfile", str(ROOT / "config" / "config.yaml"), str(folder / "overrides.yaml"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the chain failed in {folder}:\n{result.stderr[-3000:]}")
    seconds = {}
    for rule in PER_VIDEO_RULES:
        with open(folder / "logs" / "benchmarks" / rule / "clip.tsv") as record:
            seconds[rule] = float(next(csv.DictReader(record, delimiter="\t"))["s"])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=ROOT / "samples" / "synth_a.mp4")
    parser.add_argument("--frames", type=int, default=48, help="frames of the clip to run")
    parser.add_argument("--pti-steps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        batched = run_chain(Path(tmp) / "batched", args.clip.resolve(), args.frames, args.pti_steps, {})
        single = run_chain(Path(tmp) / "single", args.clip.resolve(), args.frames, args.pti_steps, ONE_AT_A_TIME)
    print(f"{'rule':>8} {'batched s':>10} {'1-frame s':>10} {'ratio':>6}")
    for rule in PER_VIDEO_RULES:
        print(f"{rule:>8} {batched[rule]:10.1f} {single[rule]:10.1f} {single[rule] / batched[rule]:6.2f}")
    fast, slow = sum(batched.values()), sum(single.values())
    print(
        f"   chain: {args.frames / fast:.2f} frames/s batched, {args.frames / slow:.2f} frames/s one at a time: "
        f"{slow / fast:.2f}x"
    )


if __name__ == "__main__":
    main()
