"""The back half measured on the bundled synthetic videos, whose truth is known: run after the main job with the
tuned generators kept (`python -m snakemake --cores 2 --config pti='{keep_generator: true}'`), reads its results/

Per video, prints:
* the transform error against the true pose (the transforms the frames stage computes from the renderer's
  true landmarks) before and after smoothing: mean angle error in degrees, mean shift error in image widths;
* PTI: the mean L2 of the transformed render to the source crops before and after tuning, and the drop;
* the `smile` edit (or --edit): share of usable frames whose synthetic-classifier smile score rises on the
  PTI generator's aligned render against the unedited one, the same share read by each reader of the panel
  (sg3pipe.synth.panel; --panel, when its files exist) with the panel's minimum and median, each reader's mean
  score before and after the edit and its share of reconstructions already above 0.99 (where no score can
  rise), mean identity similarity of the edit to the reconstruction (dlib), and TL-ID / TG-ID from
  metrics.parquet;
* paste-back: the largest change of a source pixel where the warped face mask is exactly 0 (must be 0).

    python benchmarks/measure_back_half.py
    python benchmarks/measure_back_half.py --videos synth_a synth_b --edit smile --factor 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import sg3pipe.synth  # noqa: F401 - registers the scorer kind `synthetic`
from sg3pipe import load_generator
from sg3pipe.editing.classifiers import load_scorer
from sg3pipe.io.tables import column_array, read_table
from sg3pipe.metrics.identity import IdentityModel
from sg3pipe.pixels import to_uint8
from sg3pipe.plots import true_crop_transforms
from sg3pipe.render.names import edit_variant_name
from sg3pipe.render.pasteback import face_mask, frame_to_crop, paste_back
from sg3pipe.render.variants import base_variants, edit_variants, render_images
from sg3pipe.synth.panel import load_panel, panel_paths, panel_summary
from sg3pipe.temporal import smoothing_settings
from sg3pipe.video.decode import read_all_frames


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180) % 360 - 180)


def transform_errors(frames, smoothed, truth, usable) -> dict:
    expected = true_crop_transforms(truth, frames)
    out = {}
    for name, table in (("raw", frames), ("smoothed", smoothed)):
        angle = angle_difference(table["angle_deg"].to_numpy(), expected["angle_deg"])[usable]
        shift = np.hypot(table["tx"] - expected["tx"], table["ty"] - expected["ty"]).to_numpy()[usable]
        out[name] = (angle.mean(), shift.mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--videos", nargs="+", default=["synth_a", "synth_b"])
    parser.add_argument("--edit", default="smile")
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--attribute", default="smiling")
    parser.add_argument("--generator", default="models/synth_generator.safetensors")
    parser.add_argument("--classifier", default="models/synth_classifier.safetensors")
    parser.add_argument("--panel", default="models/panel", help="folder of the panel's readers (skipped if absent)")
    args = parser.parse_args()
    results = Path(args.results)
    G = load_generator(args.generator)
    scorer = load_scorer({"kind": "synthetic", "path": args.classifier})
    paths = panel_paths(args.panel)
    panel = load_panel(paths) if all(path.exists() for path in paths.values()) else {}
    identity = IdentityModel()
    for video in args.videos:
        folder = results / video
        frames, _ = read_table(folder / "frames.parquet")
        latents, latents_meta = read_table(folder / "latents.parquet")
        smoothed, smoothed_meta = read_table(folder / "smoothed.parquet")
        truth, _ = read_table(Path("samples") / f"{video}.truth.parquet")
        usable = smoothed["usable"].to_numpy().astype(bool)
        errors = transform_errors(frames, smoothed, truth, usable)
        print(f"{video}: {usable.sum()} of {len(usable)} frames usable")
        for name, (angle, shift) in errors.items():
            print(f"  transform error {name:8s}: {angle:.3f} deg, {shift:.4f} image widths")
        _, pti_meta = read_table(folder / "pti" / "loss.parquet")
        drop = 1 - pti_meta["end_l2"] / pti_meta["start_l2"]
        print(f"  PTI mean L2 {pti_meta['start_l2']:.5f} -> {pti_meta['end_l2']:.5f} ({drop:.0%} lower)")

        tuned = folder / "pti" / "generator.safetensors"
        if not tuned.exists():
            raise SystemExit(f"{tuned} is missing: run the main job with --config pti='{{keep_generator: true}}'")
        G_pti = load_generator(tuned)
        edits, edits_meta = read_table(folder / "edits" / f"{args.edit}.parquet")
        variants = base_variants(latents, latents_meta, frames, smoothed)
        settings = smoothing_settings(smoothed_meta["smooth"])
        edited = edit_variants(
            args.edit, edits, edits_meta, usable, variants[1].ws, variants[1].transforms, settings, G
        )
        name = edit_variant_name(args.edit, args.factor)
        edit = next(v for v in edited if v.name == name)
        rows = np.flatnonzero(usable)
        with torch.no_grad():
            before = render_images(G_pti, variants[2], rows, with_transform=False)
            after = render_images(G_pti, edit, rows, with_transform=False)
            attribute = scorer.names.index(args.attribute)
            scores = {"shipped classifier": (scorer(before)[:, attribute], scorer(after)[:, attribute])}
            for reader, net in panel.items():
                scores[reader] = (torch.sigmoid(net(before)[:, attribute]), torch.sigmoid(net(after)[:, attribute]))
        rise = scores["shipped classifier"][1] > scores["shipped classifier"][0]
        read = {reader: float((a > b).float().mean()) for reader, (b, a) in scores.items() if reader in panel}
        similarity = identity.similarity(to_uint8(after), to_uint8(before))
        metrics, metrics_meta = read_table(folder / "metrics.parquet")
        consistency = metrics_meta["summary"][0].get(name, {})
        print(
            f"  {name}: {args.attribute} score rises on {rise.float().mean():.1%} of usable frames; identity to the"
            f" reconstruction {similarity.mean():.3f} (min {similarity.min():.3f}); TL-ID"
            f" {consistency.get('tl_id', float('nan')):.3f}, TG-ID {consistency.get('tg_id', float('nan')):.3f}"
        )

        # A score cannot rise where the reader already reads the reconstruction as having the attribute.
        print(
            f"  {name}: {args.attribute} score before -> after (share of reconstructions above 0.99): "
            + ", ".join(
                f"{reader} {b.mean():.2f} -> {a.mean():.2f} ({(b > 0.99).float().mean():.0%})"
                for reader, (b, a) in scores.items()
            )
        )
        if panel:
            summary = panel_summary({name: {"rise": value} for name, value in read.items()})
            print(
                f"  {name}: {args.attribute} score rises, read by the panel: "
                + ", ".join(f"{reader} {value:.1%}" for reader, value in read.items())
                + f"; min {summary['min']['rise']:.1%}, median {summary['median']['rise']:.1%}"
            )

        source = read_all_frames(Path("samples") / f"{video}.mp4")[rows]
        quad = column_array(frames, "crop_quad", (4, 2))[0].astype(np.float64)
        landmarks = column_array(frames, "landmarks", (68, 2)).astype(np.float64)
        r = G.img_resolution
        masks = face_mask(frame_to_crop(landmarks[rows], quad, r), r, 0.02 * r, 0.06 * r)
        with torch.no_grad():
            crops = to_uint8(render_images(G_pti, edit, rows))
        # Where the warped mask is above 0: pasting a crop and its negative there gives different pixels.
        inside = (paste_back(source, crops, quad, masks) != paste_back(source, 255 - crops, quad, masks)).any(-1)
        pasted = paste_back(source, crops, quad, masks).astype(int)
        outside = np.abs(pasted - source).max(axis=-1)[~inside].max()
        inner = np.abs(pasted - source).mean(axis=-1)[inside].mean()
        print(
            f"  paste-back: mask covers {inside.mean():.1%} of frame pixels; outside it the largest change of a"
            f" source pixel is {outside} levels; inside, the mean change is {inner:.1f} levels"
        )


if __name__ == "__main__":
    main()
