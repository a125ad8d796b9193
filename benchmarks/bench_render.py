"""Rendering throughput of rule render: frames of a variant rendered with their transforms and turned into
uint8 video frames, a batch at a time against one frame at a time (the official code's way), same process.

Prints frames/s of both and their ratio, for a W variant and a StyleSpace-edit variant. The shipped synthetic
generator by default; the latents are the generator's own samples under random similarity transforms.

    python benchmarks/bench_render.py
    python benchmarks/bench_render.py --frames 64 --batch 16
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import batch_ratio

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.networks.stylespace import flatten_styles
from sg3pipe.pixels import to_uint8
from sg3pipe.render.variants import Variant, render_images
from sg3pipe.transforms import make_transform


def render_all(G, variant: Variant, n: int, batch: int) -> None:
    with torch.no_grad():
        for start in range(0, n, batch):
            to_uint8(render_images(G, variant, np.arange(start, min(start + batch, n))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=48, help="frames per timed run")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--generator", default="models/synth_generator.safetensors")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = pick_device(args.device)
    G = load_generator(args.generator, device)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        ws = G.mapping(torch.randn(args.frames, G.z_dim, generator=torch.Generator().manual_seed(0)).to(device))
        channels = flatten_styles(G.synthesis.styles(ws[:1]))[0].shape[1]
    ws = ws.cpu().numpy()
    transforms = make_transform(rng.uniform(-10, 10, args.frames), rng.uniform(-0.05, 0.05, args.frames), 0.0)
    offsets = np.zeros((args.frames, channels), dtype=np.float32)
    offsets[:, rng.choice(channels, 16, replace=False)] = 1.0
    variants = [Variant("w", ws, transforms, "base"), Variant("s", ws, transforms, "base", style_offsets=offsets)]
    for variant in variants:
        ratio = batch_ratio(
            lambda batch, v=variant: render_all(G, v, args.frames, batch),
            args.frames,
            args.batch,
            args.repeats,
            "frames",
            f"{variant.name} ",
        )
        print(f"{variant.name} ratio batch {args.batch} / batch 1: {ratio:.2f}x on {device}")


if __name__ == "__main__":
    main()
