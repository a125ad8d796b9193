"""Peak memory of one 1024x1024 image from a StyleGAN3-R generator with the official r-ffhq-1024 shapes.

Random weights (the official file cannot be downloaded here), CPU, no gradients. Prints the render time
and the process's peak resident memory; the goal is under 6 GB.

    python benchmarks/bench_generator_memory.py
"""

from __future__ import annotations

import resource
import time

import torch

from sg3pipe.networks.stylegan3 import Generator


def main() -> None:
    torch.manual_seed(0)
    G = Generator(
        z_dim=512,
        c_dim=0,
        w_dim=512,
        img_resolution=1024,
        img_channels=3,
        channel_base=65536,
        channel_max=1024,
        conv_kernel=1,
        use_radial_filters=True,
    ).eval()
    params = sum(p.numel() for p in G.parameters())
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, 512), truncation_psi=0.7)
        start = time.perf_counter()
        image = G.synthesis(ws)
        seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux
    print(
        f"R 1024x1024, {params / 1e6:.1f} M parameters: one image {tuple(image.shape)} in {seconds:.1f} s, "
        f"peak resident memory {peak_gb:.2f} GB (goal < 6 GB)"
    )


if __name__ == "__main__":
    main()
