"""ReStyle inversion throughput: a batch of frames per pass against one frame at a time, same model, same process.

The official video code inverts one frame at a time; sg3pipe puts a batch through every encoder and generator
pass. Prints frames per second of both and their ratio (batched / one at a time), for the whole inversion
(``invert(batch_size=B)`` against ``invert(batch_size=1)``: the average image is rendered once in both) and for
its two parts, one encoder pass and one generator pass. The goal: >= 2x at
batch 16. Random weights of the synthetic world's sizes by default (R generator, 64 px, w_dim 128, and a small
IR-SE e4e encoder); the options change them, and ``--encoder`` times a model file instead.

    python benchmarks/bench_encoder.py
    python benchmarks/bench_encoder.py --encoder models/synth_encoder.safetensors
    python benchmarks/bench_encoder.py --frames 32 --batch 16 --iters 3 --input-size 64
"""

from __future__ import annotations

import argparse

import torch
from timing import best_time

from sg3pipe.devices import pick_device
from sg3pipe.networks.encoders import BackboneEncoder, official_config
from sg3pipe.networks.restyle import ReStyleEncoder, load_encoder
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.synth.generator_training import GeneratorTrainingConfig


def build(args: argparse.Namespace) -> ReStyleEncoder:
    torch.manual_seed(0)
    G = Generator(**GeneratorTrainingConfig(resolution=args.resolution).generator_kwargs())
    config = {
        **official_config(args.encoder_type, w_dim=G.w_dim, n_styles=G.num_ws),
        "input_size": args.input_size,
        "stage_units": args.stage_units,
        "stage_widths": args.stage_widths,
    }
    return ReStyleEncoder(BackboneEncoder(**config), G, G.mapping.w_avg).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16, help="frames inverted per timed run")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=3, help="ReStyle iterations")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=64, help="generator resolution (the synthetic world's)")
    parser.add_argument("--encoder-type", default="ProgressiveBackboneEncoder")
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--stage-units", type=int, nargs="+", default=[1, 2, 2, 1])
    parser.add_argument("--stage-widths", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--encoder", help="a ReStyle encoder file (sg3pipe or official); default: random weights")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = pick_device(args.device)
    enc = load_encoder(args.encoder, device) if args.encoder else build(args).to(device)
    args.resolution = enc.decoder.img_resolution
    images = torch.rand(args.frames, 3, args.resolution, args.resolution, device=device) * 2 - 1
    params = sum(p.numel() for p in enc.encoder.parameters())
    print(
        f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads; {args.encoder or args.encoder_type} "
        f"{params / 1e6:.2f} M params, input {enc.encoder.input_size}, generator {args.resolution} px; "
        f"{args.frames} frames, {args.iters} iterations"
    )

    with torch.no_grad():
        x6 = enc.pool(images).repeat(1, 2, 1, 1)
        ws = enc.latent_avg.expand(args.frames, -1, -1).contiguous()
    passes = {
        "inversion": lambda batch: enc.invert(images, n_iters=args.iters, batch_size=batch),
        "encoder pass": lambda batch: [enc(x6[i : i + batch]) for i in range(0, args.frames, batch)],
        "generator pass": lambda batch: [
            enc.decoder.synthesis(ws[i : i + batch]) for i in range(0, args.frames, batch)
        ],
    }
    print(f"{'':>15} {'batch ' + str(args.batch) + ' fps':>14} {'batch 1 fps':>12} {'ratio':>7}")
    for name, run in passes.items():
        with torch.no_grad():
            batched = best_time(lambda run=run: run(args.batch), args.repeats)
            singles = best_time(lambda run=run: run(1), args.repeats)
        print(
            f"{name:>15} {args.frames / batched:14.2f} {args.frames / singles:12.2f} {singles / batched:6.2f}x",
            flush=True,
        )
    print("goal (issue 5): inversion ratio >= 2x at batch 16")


if __name__ == "__main__":
    main()
