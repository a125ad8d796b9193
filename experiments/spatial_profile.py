"""The early gate of a generator training run: how much spatial signal each synthesis layer still carries.

Prints, for the input and every layer, the standard deviation over pixels of its output (mean over channels and
samples) and, after a slash, the spread of the channel means across samples: the initial network's profile
(seeded as the trainer seeds it) and the trained one's. Training PSNR sits near 14 dB for the first ~1,000 steps
of every config tried, so it cannot tell a run that will learn faces from one that collapsed; this profile can
(docs/findings.md).

    python experiments/spatial_profile.py results/synth_models/generator/base/checkpoint.pt
"""

from __future__ import annotations

import argparse

import torch

from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.synth.generator_training import GeneratorTrainingConfig


def spatial_profile(G: Generator, n: int = 8, seed: int = 1) -> list[tuple[str, float, float]]:
    """``[(layer, spatial std, channel-mean spread across samples)]`` of ``G.synthesis`` on ``n`` seeded latents."""
    names = ["input", *G.synthesis.layer_names]
    stats: list[tuple[str, float, float]] = []

    def record(name):
        def hook(module, inputs, output):
            stats.append((name, output.std(dim=(2, 3)).mean().item(), output.mean(dim=(2, 3)).std(0).mean().item()))

        return hook

    hooks = [getattr(G.synthesis, name).register_forward_hook(record(name)) for name in names]
    with torch.no_grad():
        G.synthesis(G.mapping(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))))
    for hook in hooks:
        hook.remove()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint.pt of sg3pipe.synth.generator_training.train_generator")
    args = parser.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)  # our own training checkpoint
    fields = GeneratorTrainingConfig.__dataclass_fields__
    cfg = GeneratorTrainingConfig(**{k: v for k, v in state["config"].items() if k in fields})
    print(f"step {state['step']}")
    for label, weights in (("initial", None), ("trained", state["generator"])):
        torch.manual_seed(cfg.seed)
        G = Generator(**cfg.generator_kwargs())
        if weights is not None:
            G.load_state_dict(weights)
        profile = spatial_profile(G.eval())
        print(f"{label:>8}: " + " ".join(f"{name.split('_')[0]} {s:.3f}/{c:.3f}" for name, s, c in profile))


if __name__ == "__main__":
    main()
