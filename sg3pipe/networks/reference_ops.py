"""The official StyleGAN3 reference math for the two costly ops, written literally (slow on purpose).

This is the baseline the fast ops in ``ops.py`` are checked against (tests) and timed against
(``benchmarks/bench_generator.py``): zero-stuffed upsampling, full-rate filtering and then discarding
samples, one modulated weight per sample and a grouped convolution. Select it with
``G.synthesis(ws, impl="reference")``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool,
    input_gain: torch.Tensor,
    padding: int,
) -> torch.Tensor:
    """Same contract as :func:`sg3pipe.networks.ops.modulated_conv2d`; styles normalised over the batch."""
    n, in_channels = styles.shape
    out_channels, _, kh, kw = weight.shape
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_channels, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, out_channels, 1, 1, 1)
    w = w * input_gain.reshape(1, 1, 1, 1, 1)
    x = x.reshape(1, n * in_channels, *x.shape[2:])
    x = F.conv2d(x, w.reshape(n * out_channels, in_channels, kh, kw).to(x.dtype), padding=padding, groups=n)
    return x.reshape(n, out_channels, *x.shape[2:])


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding=(0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with ``f`` at the full rate, keep every ``down``-th sample.

    Args:
        x: ``[N, C, H, W]``; f: ``[K]`` (separable) or ``[K, K]`` filter, ``None`` for identity.
        padding: ``[x0, x1, y0, y1]``, negative values crop.
    """
    n, c, h, w = x.shape
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    x0, x1, y0, y1 = padding
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, [x0, x1, y0, y1])
    f = (f * gain ** (f.ndim / 2)).to(x.dtype).flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f.reshape(1, 1, *f.shape).repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor,
    up: int,
    down: int,
    padding: list[int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """Same contract as :func:`sg3pipe.networks.ops.filtered_lrelu`, computed the literal way."""
    x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up**2)
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down)
