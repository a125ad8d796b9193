"""Peak memory of the per-video chain against the length of the clip: does any stage hold the whole clip?

The stages of sg3pipe.stages (frames, encode, render: PTI, one edit, smoothing, every video including paste-back,
metrics) run as plain functions on the astronaut clip (sg3pipe.synth.photo_clip: the photo filmed by a moving
camera, 512x512 h264 with audio, 25 frames/s; its landmarks come from the clip's truth table, so dlib does not
dominate the frames stage, which still decodes the clip twice and writes both crop videos) at each length asked
for, with a random 256-px generator of tiny channels and a tiny random ReStyle encoder for it (only memory and
speed are measured: their pictures mean nothing). With ``--faces 2`` the clip is the astronaut and Grace Hopper
side by side under the same camera, both faces followed by dlib (``faces.max_faces: 2``): every stage then
handles two tracks (two crops per frame, one PTI over both, both pasted back).

Each stage runs in a fresh process (multiprocessing, spawn). Its peak resident memory is that process's
``VmHWM`` (Linux's high-water mark of its own memory since it started; ``ru_maxrss`` would not do: it keeps the
resident memory of the process it was forked from, here the benchmark's, as its floor). ffmpeg's decoders and
encoders are processes of their own, with buffers of a few frames, and are not counted. ``imports`` is the
stage's resident memory before it starts, with its modules (sg3pipe, torch where it uses it) imported.

Prints, per stage and length, the peak, the frames/s of the stage, and the ratio of the peaks of the longest and
the shortest clip; PASS when every ratio is at most 1.3. What it measured: docs/results.md.

    python benchmarks/bench_long_clip.py
    python benchmarks/bench_long_clip.py --frames 300 3000 --pti-steps 20
    python benchmarks/bench_long_clip.py --frames 300 3000 --pti-steps 20 --faces 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("frames", "encode", "render")
FPS = 25.0
RESOLUTION = 256
MAX_RATIO = 1.3  # peak of the longest clip over the peak of the shortest, every stage
# A StyleGAN3-T of the shape of the official ones at 256 px, with tiny channels and few layers (fast on a CPU).
GENERATOR = {"z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": RESOLUTION, "img_channels": 3,
             "channel_base": 1024, "channel_max": 8, "num_layers": 4, "num_critical": 1, "conv_kernel": 1}  # fmt: skip
# What each stage imports, loaded before its resident memory is read as ``imports``.
STAGE_MODULES = {
    "frames": ("sg3pipe.frames",),
    "encode": ("sg3pipe.inversion", "sg3pipe.networks.restyle"),
    "render": ("sg3pipe.pti", "sg3pipe.render.videos", "sg3pipe.editing.video_edits", "sg3pipe.temporal",
               "sg3pipe.plots", "sg3pipe.metrics.lpips_loader"),
}  # fmt: skip
ENCODER = {"input_size": 32, "stage_units": [1, 2, 1, 1], "stage_widths": [8, 16, 24, 32], "se_reduction": 4}


def make_models(folder: Path) -> dict[str, Path]:
    """The generator, its encoder and a directions folder with one random W direction, ``rand``."""
    import numpy as np
    import torch

    from sg3pipe.editing.directions import save_boundary
    from sg3pipe.io.tables import write_table
    from sg3pipe.networks.encoders import BackboneEncoder, official_config
    from sg3pipe.networks.loading import save_generator
    from sg3pipe.networks.restyle import ReStyleEncoder, save_encoder
    from sg3pipe.networks.stylegan3 import Generator

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    G = Generator(**GENERATOR).eval()
    with torch.no_grad():  # a fresh generator's biases are zero and its input ignores w: give every term a value
        G.mapping.w_avg.normal_()
        for name in G.synthesis.layer_names:
            getattr(G.synthesis, name).bias.normal_(0, 0.1)
        G.synthesis.input.affine.weight.normal_(0, 0.3)
    config = official_config("ProgressiveBackboneEncoder", w_dim=G.w_dim, n_styles=G.num_ws)
    encoder = BackboneEncoder(**{**config, **ENCODER}).eval()
    save_generator(G, folder / "generator.safetensors")
    save_encoder(ReStyleEncoder(encoder, G, G.mapping.w_avg.clone()).eval(), folder / "encoder.safetensors")
    directions = folder / "directions"
    directions.mkdir()
    save_boundary(directions / "rand.npy", np.random.default_rng(0).standard_normal(G.w_dim))
    write_table(directions / "directions.parquet",
                {"name": ["rand"], "space": ["w"], "file": ["rand.npy"], "std": [1.0]}, {})  # fmt: skip
    return {"generator": folder / "generator.safetensors", "encoder": folder / "encoder.safetensors",
            "directions": directions / "directions.parquet"}  # fmt: skip


def stage_calls(
    folder: Path, clip: Path, truth: Path | None, models: dict, pti_steps: int, device: str, faces: int = 1
) -> list:
    """``(stage, inputs, outputs, config)`` of the chain on one clip, in order, as the rules pass them: the
    landmarks from the ``truth`` table, or with ``truth`` None from dlib, following ``faces`` faces."""
    import yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["pti"].update(steps=pti_steps, checkpoint_every=max(1, pti_steps))
    config["smooth"]["fine_rows"] = None  # the tiny generator has 6 W+ rows, not 16
    config["metrics"]["identity"] = False
    config["encode"].update(n_iters=1, identity=False)
    edits = [{"name": "rand", "direction": "rand", "space": "w", "factors": [2.0], "unit": "raw"}]
    video = folder / "results"
    frames_out = {"table": video / "frames.parquet", "aligned": video / "aligned.mkv", "crops": video / "crops.mkv"}
    render_out = {
        "losses": video / "pti" / "loss.parquet",
        "curve": video / "pti" / "loss.png",
        "edits": video / "edits",
        "smoothed": video / "smoothed.parquet",
        "trajectory": video / "trajectory.png",
        "videos": video / "videos",
        "metrics": video / "metrics.parquet",
        "plot": video / "metrics.png",
    }
    sections = {
        "ingest": config["ingest"],
        "landmarks": {**config["landmarks"], "backend": "dlib" if truth is None else "table"},
        "faces": {**config["faces"], "max_faces": faces},
        "align": {**config["align"], "size": RESOLUTION},
        "clip": {},
    }
    render_config = {key: config[key] for key in ("pti", "smooth", "render", "metrics")}
    render_config.update(edits=edits, device=device, lpips=None, pti_workdir=video / "pti" / "work")
    calls = [
        ("frames", {"video": clip, **({"landmarks": truth} if truth else {})}, frames_out, sections),
        ("encode", {**frames_out, "model": models["encoder"]}, {"table": video / "latents.parquet"},
         {"encode": config["encode"], "device": device}),
        ("render", {"video": clip, "frames": frames_out["table"], "latents": video / "latents.parquet",
                    "crops": frames_out["crops"], "directions": models["directions"], "generator": models["generator"]},
         render_out, render_config),
    ]  # fmt: skip
    return [(name, _text(inputs), _text(outputs), _text(cfg)) for name, inputs, outputs, cfg in calls]


def _text(values: dict) -> dict:
    """Paths as strings, as Snakemake passes them."""
    return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


def run_stage(name: str, inputs: dict, outputs: dict, config: dict, log_path: str) -> dict:
    """One stage in this (fresh) process, its output to ``log_path``: peak resident memory (MiB) of this process,
    its resident memory after the imports, and wall seconds."""
    import importlib
    import logging
    import time

    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    for module in STAGE_MODULES[name]:
        importlib.import_module(module)
    stage = getattr(importlib.import_module(f"sg3pipe.stages.{name}"), name)
    imports_mb = _memory_mib("VmRSS")
    started = time.perf_counter()
    stage(inputs, outputs, config)
    seconds = time.perf_counter() - started
    return {
        "peak_mb": _memory_mib("VmHWM"),
        "imports_mb": imports_mb,
        "seconds": seconds,
    }


def _memory_mib(field: str) -> float:
    """A memory figure of this process from ``/proc/self/status`` (``VmRSS``: now, ``VmHWM``: its peak), MiB."""
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith(f"{field}:"))
    return int(kib) / 1024


def run_chain(folder: Path, n_frames: int, models: dict, pti_steps: int, device: str, faces: int = 1) -> dict:
    """Make the clip of ``n_frames`` frames in ``folder`` and run each stage on it in a fresh process: the
    astronaut clip with its true landmarks for one face; for two, the astronaut and Grace Hopper side by side
    under the same camera (sg3pipe.synth.multi_face.two_photo_frames), both followed by dlib."""
    folder.mkdir(parents=True)
    clip, truth = folder / "clip.mp4", folder / "clip.truth.parquet"
    if faces == 1:
        from sg3pipe.synth.photo_clip import make_photo_clip

        make_photo_clip(clip, truth, size=512, seconds=n_frames / FPS, fps=FPS)
    else:
        from sg3pipe.synth.multi_face import two_photo_frames
        from sg3pipe.video.writer import write_video

        write_video(clip, two_photo_frames(n_frames, FPS)[0], FPS)
        truth = None
    results = {}
    for name, inputs, outputs, config in stage_calls(folder, clip, truth, models, pti_steps, device, faces):
        log_path = folder / f"{name}.log"
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                results[name] = pool.submit(run_stage, name, inputs, outputs, config, str(log_path)).result()
            except Exception as error:
                raise RuntimeError(f"stage {name} failed on {n_frames} frames; its log: {log_path}") from error
        results[name]["fps"] = n_frames / results[name]["seconds"]
        print(f"  {name:>6} {n_frames:6d} frames: peak {results[name]['peak_mb']:7.0f} MiB, "
              f"{results[name]['fps']:6.1f} frames/s", flush=True)  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 3000], help="clip lengths, shortest first")
    parser.add_argument("--pti-steps", type=int, default=20, help="PTI steps (batch 2)")
    parser.add_argument("--device", default="cpu", help="device of the stages (cpu, cuda, auto)")
    parser.add_argument("--faces", type=int, choices=(1, 2), default=1, help="faces followed in the clip")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    print("command:", shlex.join(["python", os.path.relpath(__file__, ROOT), *sys.argv[1:]]), flush=True)
    lengths = sorted(set(args.frames))
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="bench_long_clip_"))
    try:
        models = make_models(folder / "models")
        runs = {n: run_chain(folder / f"clip{n}", n, models, args.pti_steps, args.device, args.faces) for n in lengths}
    finally:
        if args.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)

    print(
        f"\n{RESOLUTION}-px generator, {args.faces} face(s), PTI {args.pti_steps} steps, {os.cpu_count()} CPUs, "
        f"device {args.device}"
    )
    print(f"{'stage':>7} {'frames':>7} {'peak MiB':>9} {'imports MiB':>12} {'frames/s':>9}")
    for name in STAGES:
        for n in lengths:
            r = runs[n][name]
            print(f"{name:>7} {n:7d} {r['peak_mb']:9.0f} {r['imports_mb']:12.0f} {r['fps']:9.1f}")
    if len(lengths) > 1:
        short, long = lengths[0], lengths[-1]
        ratios = {name: runs[long][name]["peak_mb"] / runs[short][name]["peak_mb"] for name in STAGES}
        print(f"\npeak ratio {long}/{short} frames: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
        grown = [name for name, ratio in ratios.items() if ratio > MAX_RATIO]
        print(f"FAIL: {', '.join(grown)} grew past {MAX_RATIO}x" if grown else f"PASS: every stage within {MAX_RATIO}x")


if __name__ == "__main__":
    main()
