"""The cheap gate before a long generator run: can the synthesis network fit the fine detail (eyes, lips,
glasses) of two fixed renderer faces? Tunes ``G.synthesis`` on two aligned renders with their latents fixed,
prints the PSNR every 50 steps and writes ``targets | renders`` to a PNG to look at. What it measured on the
bundled generator: docs/findings.md.

    python experiments/overfit_two_faces.py --highpass 30 --out /tmp/overfit.png
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from PIL import Image

from sg3pipe import load_generator
from sg3pipe.pixels import tile, to_uint8
from sg3pipe.synth.generator_training import high_pass
from sg3pipe.synth.params import face_params
from sg3pipe.synth.renderer import render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="models/synth_generator.safetensors")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--highpass", type=float, default=0.0, help="weight of the high-pass L2 term")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", default="overfit_two_faces.png")
    args = parser.parse_args()

    G = load_generator(args.generator).train()
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(args.seed))
    target = render(face_params(z), G.img_resolution, np.stack([np.eye(3)] * 2)).images
    ws = G.mapping(z).detach()
    optimizer = torch.optim.Adam(G.synthesis.parameters(), args.lr)
    for step in range(args.steps):
        images = G.synthesis(ws)
        l2 = (images - target).square().mean()
        loss = l2 + args.highpass * (high_pass(images) - high_pass(target)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step}: {10 * math.log10(4 / l2.item()):.1f} dB")
    Image.fromarray(tile(to_uint8(torch.cat([target, images.detach()])), 4)).save(args.out)
    print(f"targets | renders: {args.out}")


if __name__ == "__main__":
    main()
