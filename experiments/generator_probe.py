"""Train (or resume) one synthetic-generator config, then measure what it draws.

Trains with :func:`sg3pipe.synth.generator_training.train_generator` into OUT_DIR (resumable: run it again with
the same arguments to go on), then prints the balanced accuracy per attribute of a classifier (``--classifier``,
by default the bundled one) on the weight average's images of 1,024 fresh seeds against their labels
(``attribute_accuracy``), writes ``OUT_DIR/G.safetensors`` and ``OUT_DIR/grid.png`` (renders on top, the
generator below, aligned, the same 8 latents). Config fields go in as JSON; the defaults fill the rest. The
probes behind :mod:`sg3pipe.synth.generator_recipe` and what each measured: docs/findings.md.

    python experiments/generator_probe.py /tmp/probeE --lr 1e-2 \
        '{"synthesis_kwargs": {"first_cutoff": 8, "first_stopband": 17.1}, "steps": 8000}'
    python experiments/generator_probe.py /tmp/probeH --lr 3e-3 \
        '{"init_from": "/tmp/probeE/G.safetensors", "landmark_weight": 10.0, "steps": 6000}'
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sg3pipe.networks.loading import save_generator
from sg3pipe.synth.classifier import load_classifier
from sg3pipe.synth.generator_training import (
    GeneratorTrainingConfig,
    attribute_accuracy,
    distillation_batch,
    random_transforms,
    train_generator,
)

ROOT = Path(__file__).resolve().parents[1]


def grid(G, n: int = 8, seed: int = 12345) -> np.ndarray:
    """``[2 * R, n * R, 3]`` uint8: the renderer's aligned faces of ``n`` seeded latents over ``G``'s."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=rng)
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z))
    real = distillation_batch(z, random_transforms(n, rng, 0.0, 0.0), G.img_resolution)
    images = torch.cat([real, fake]).clamp(-1, 1).add(1).mul(127.5).round().byte()
    r = G.img_resolution
    return images.reshape(2, n, 3, r, r).permute(0, 3, 1, 4, 2).reshape(2 * r, n * r, 3).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("config", nargs="?", default="{}", help="GeneratorTrainingConfig fields as JSON")
    parser.add_argument("--lr", type=float, help="the learning rate (the shipped config's when not given)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-limit", type=float, help="seconds; stops after a checkpoint, resume by rerunning")
    parser.add_argument("--classifier", type=Path, default=ROOT / "models" / "synth_classifier.safetensors")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    fields = json.loads(args.config)
    if args.lr is not None:
        fields["lr"] = args.lr
    G = train_generator(args.out_dir, GeneratorTrainingConfig(**fields), time_limit_s=args.time_limit).cpu()
    save_generator(G, args.out_dir / "G.safetensors")
    Image.fromarray(grid(G)).resize((8 * 128, 2 * 128), Image.NEAREST).save(args.out_dir / "grid.png")
    accuracy = attribute_accuracy(G, load_classifier(args.classifier))
    print("balanced accuracy:", {name: round(value, 3) for name, value in accuracy.items()})


if __name__ == "__main__":
    main()
