"""The StyleGAN3 layer schedule and its anti-aliasing filters, as small pure functions.

Symbols follow the StyleGAN3 paper: cutoff ``f_c``, stopband ``f_t``, sampling rate ``s``, transition half
width ``f_h``. Frequencies are in cycles per unit of the input grid (one unit = the output image width).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal
import scipy.special
import torch


@dataclass(frozen=True)
class LayerSpec:
    """Everything that fixes one synthesis layer's shape (index 0..num_layers; the last one is ToRGB)."""

    index: int
    name: str  # "L{index}_{size}_{channels}", the official parameter-name prefix
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool  # computed in float16 when running on CUDA with fp16 enabled
    in_channels: int
    out_channels: int
    in_size: int  # spatial size (square) of the input, margin included
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float


@dataclass(frozen=True)
class InputSpec:
    """Shape of the Fourier-feature input layer."""

    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


def synthesis_schedule(
    img_resolution: int,
    img_channels: int,
    channel_base: int = 32768,
    channel_max: int = 512,
    num_layers: int = 14,
    num_critical: int = 2,
    first_cutoff: float = 2,
    first_stopband: float = 2**2.1,
    last_stopband_rel: float = 2**0.3,
    margin_size: int = 10,
    num_fp16_res: int = 4,
) -> tuple[InputSpec, list[LayerSpec]]:
    """The per-layer cutoffs, stopbands, sampling rates, sizes and channel counts of StyleGAN3 synthesis.

    Cutoffs and stopbands grow geometrically from the first layer to the last ``num_critical`` layers,
    which are critically sampled at the output resolution (as in ``SynthesisNetwork`` of NVlabs/stylegan3
    ``training/networks_stylegan3.py``).
    """
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels

    input_spec = InputSpec(int(channels[0]), int(sizes[0]), float(sampling_rates[0]), float(cutoffs[0]))
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        layers.append(
            LayerSpec(
                index=idx,
                name=f"L{idx}_{int(sizes[idx])}_{int(channels[idx])}",
                is_torgb=idx == num_layers,
                is_critically_sampled=idx >= num_layers - num_critical,
                use_fp16=bool(sampling_rates[idx] * 2**num_fp16_res > img_resolution),
                in_channels=int(channels[prev]),
                out_channels=int(channels[idx]),
                in_size=int(sizes[prev]),
                out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]),
                out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=float(cutoffs[prev]),
                out_cutoff=float(cutoffs[idx]),
                in_half_width=float(half_widths[prev]),
                out_half_width=float(half_widths[idx]),
            )
        )
    return input_spec, layers


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """A Kaiser-windowed low-pass FIR filter; ``None`` for a single tap (identity).

    Args:
        numtaps: filter length in taps.
        cutoff: cutoff frequency, same unit as ``fs``.
        width: transition band width, same unit as ``fs``.
        fs: sampling rate.
        radial: a 2-D radially symmetric (jinc) filter ``[numtaps, numtaps]`` instead of a separable
            1-D filter ``[numtaps]``.
    """
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(
            scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32
        )
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f *= np.outer(window, window)
    f /= np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)


def layer_padding(
    in_size: int, out_size: int, conv_kernel: int, up: int, down: int, up_taps: int, down_taps: int
) -> list[int]:
    """Padding ``[x0, x1, y0, y1]`` of the upsampled signal so the output has ``out_size`` samples.

    The low side gets ``up // 2`` more so sample positions follow the symmetric interpretation
    (StyleGAN3 paper, appendix C.3).
    """
    pad_total = (out_size - 1) * down + 1  # output size before downsampling
    pad_total -= (in_size + conv_kernel - 1) * up  # input size after the convolution and upsampling
    pad_total += up_taps + down_taps - 2  # size lost to the two filters
    pad_lo = (pad_total + up) // 2
    pad_hi = pad_total - pad_lo
    return [pad_lo, pad_hi, pad_lo, pad_hi]
