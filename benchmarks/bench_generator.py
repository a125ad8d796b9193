"""Generator speed on the CPU: sg3pipe's fast ops against the official reference math, same weights.

Prints, per configuration, the forward and forward+backward times of both implementations and their
ratio (reference / fast). The reference implementation (``impl="reference"``) is the literal math of
NVlabs' reference ops: zero-stuffed upsampling, full-rate filtering, grouped modulated convolution.
The goals: forward >= 3x, forward+backward >= 2x.

    python benchmarks/bench_generator.py                      # 64 and 256, T and R, batch 8
    python benchmarks/bench_generator.py --resolutions 64 --repeats 3
    python benchmarks/bench_generator.py --retain-freed-memory  # no page faults for either implementation

Timings vary from run to run on a shared machine (by up to 2x for the first configuration of a process);
compare ratios from one process, and both allocator settings.
"""

from __future__ import annotations

import argparse

import torch
from timing import best_time

from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.transforms import synthesis_transform

CONFIGS = {"T": {}, "R": {"conv_kernel": 1, "use_radial_filters": True}}


def bench(cfg: str, resolution: int, batch: int, repeats: int, channel_base: int, channel_max: int) -> dict:
    torch.manual_seed(0)
    G = Generator(
        z_dim=512,
        c_dim=0,
        w_dim=512,
        img_resolution=resolution,
        img_channels=3,
        channel_base=channel_base,
        channel_max=channel_max,
        **CONFIGS[cfg],
    )
    ws = G.mapping(torch.randn(batch, 512)).detach()
    transform = torch.as_tensor(synthesis_transform(torch.linspace(-20, 20, batch), 0.05, -0.03))

    def forward(impl):
        with torch.no_grad():
            G.synthesis(ws, transform=transform, impl=impl)

    def forward_backward(impl):
        w = ws.clone().requires_grad_(True)
        G.synthesis(w, transform=transform, impl=impl).square().mean().backward()

    row = {"config": cfg, "resolution": resolution}
    for fn in (forward, forward_backward):  # both warmed up before either is timed: the same allocator state
        for impl in ("fast", "reference"):
            fn(impl)
    for name, fn in (("forward", forward), ("forward+backward", forward_backward)):
        fast = best_time(lambda fn=fn: fn("fast"), repeats)
        reference = best_time(lambda fn=fn: fn("reference"), repeats)
        row[name] = (fast, reference, reference / fast)
    return row


def retain_freed_memory() -> None:
    """Make glibc keep freed memory (no mmap per large tensor, no trimming): a steady-state allocator."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameters of <malloc.h>
    most = ctypes.c_int(2**31 - 1)  # the parameters are C ints: a larger Python int would wrap silently (to 0)
    if not (libc.mallopt(m_mmap_threshold, ctypes.c_int(1 << 30)) and libc.mallopt(m_trim_threshold, most)):
        raise RuntimeError("mallopt refused the settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--configs", nargs="+", default=["T", "R"], choices=sorted(CONFIGS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--channel-base", type=int, default=2048, help="default: the synthetic world's generator")
    parser.add_argument("--channel-max", type=int, default=128)
    parser.add_argument(
        "--retain-freed-memory",
        action="store_true",
        help="keep freed memory in the process (glibc mallopt): large tensors then cost no page faults, which "
        "otherwise weigh on the reference's large zero-stuffed intermediates",
    )
    args = parser.parse_args()
    if args.retain_freed_memory:
        retain_freed_memory()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"channel_base {args.channel_base}, channel_max {args.channel_max}, "
        f"{'steady-state' if args.retain_freed_memory else 'default'} allocator"
    )
    print(f"{'config':>6} {'res':>5} {'pass':>17} {'fast s':>8} {'ref s':>8} {'ratio':>6}")
    for resolution in args.resolutions:
        for cfg in args.configs:
            row = bench(cfg, resolution, args.batch, args.repeats, args.channel_base, args.channel_max)
            for name in ("forward", "forward+backward"):
                fast, reference, ratio = row[name]
                print(f"{cfg:>6} {resolution:>5} {name:>17} {fast:8.3f} {reference:8.3f} {ratio:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
