"""Fast CPU/GPU implementations of StyleGAN3's two costly ops, in plain PyTorch.

Both compute exactly the math of the official reference ops (``reference_ops.py`` keeps that math in its
literal, slow form; tests check the two agree), but skip the work the literal form wastes:

* ``filtered_lrelu``: the official op zero-stuffs the signal before filtering (so three quarters of the
  multiplies are by zero) and filters at the full rate before throwing away every other sample. Here the
  upsampling is a strided transposed convolution (polyphase: no multiply by an inserted zero), the
  downsampling is strided (only kept samples are computed), separable filters run as two 1-D passes of
  channel-multiplier-1 depthwise convolutions (the fast kernel on the CPU), the output gain is folded into
  the downsampling filter, and the largest tensor is updated in place when no gradient is needed.
* ``modulated_conv2d``: instead of building one modulated weight per sample and running a grouped
  convolution, the style scales the input, one shared convolution runs over the whole batch, and the
  demodulation coefficients (computed with one matrix product) scale the output.

Everything is differentiable with autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# A filtered_lrelu call is processed in pieces (over the batch, then over channels) whose upsampled
# intermediate stays under this many bytes: the passes over it then run from cache (about 1.6x faster on
# the CPU than whole-tensor passes, measured at batch 8-16), and peak memory stays bounded at high
# resolutions (a 1024x1024 R layer would otherwise hold several GB at once).
CHUNK_BYTES = 16 << 20


def _piece_format(x: torch.Tensor) -> torch.memory_format:
    """Memory format of the pieces of a filtered_lrelu call on ``x [N, C, H, W]``.

    Channels-last for forward-only batches (N >= 2) on the CPU: oneDNN's depthwise kernels then vectorise over
    channels (the synthetic world's generator at batch 2-16, 2 threads: 26-32 frames/s against 17-23 in
    NCHW; R-256 at batch 8: 1.79 s against 2.06 s). NCHW otherwise: a single image ran faster in NCHW
    (20 frames/s against 14), and so did the backward passes (T-64 forward+backward 1.9 s against 2.6 s).
    """
    if x.device.type == "cpu" and x.shape[0] >= 2 and not (torch.is_grad_enabled() and x.requires_grad):
        return torch.channels_last
    return torch.contiguous_format


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool,
    input_gain: torch.Tensor,
    padding: int,
) -> torch.Tensor:
    """Style-modulated convolution with optional weight demodulation.

    Args:
        x: ``[N, I, H, W]`` input.
        weight: ``[O, I, k, k]`` shared convolution weight.
        styles: ``[N, I]`` per-sample input-channel scales.
        demodulate: normalise each output channel of each sample's modulated weight to unit norm.
        input_gain: scalar tensor multiplying the input (``magnitude_ema ** -0.5``).
        padding: zero padding on each side.

    Returns:
        ``[N, O, H + 2*padding - k + 1, W + 2*padding - k + 1]``.
    """
    n = x.shape[0]
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        # Per-sample RMS (the official code uses the batch's); demodulation cancels any scale of the styles
        # but the 1e-8 epsilon, so outputs agree and a sample never depends on its batch companions.
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
    x = x * (styles * input_gain.to(styles.dtype)).to(x.dtype).reshape(n, -1, 1, 1)
    if weight.shape[2:] == (1, 1) and padding == 0:  # R config: a matrix product, where conv2d takes a slow path
        x = (weight.to(x.dtype).flatten(1) @ x.flatten(2)).reshape(n, -1, *x.shape[2:])
    else:
        x = F.conv2d(x, weight.to(x.dtype), padding=padding)
    if demodulate:
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    return x


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
    """Bias, upsample by ``up`` with ``fu``, leaky ReLU, clamp, downsample by ``down`` with ``fd``.

    Args:
        x: ``[N, C, H, W]``.
        fu: 1-D upsampling filter ``[Ku]`` (``Ku`` a multiple of ``up``), or ``None`` when ``up == 1``.
        fd: 1-D ``[Kd]`` or 2-D ``[Kd, Kd]`` downsampling filter, or ``None`` when ``down == 1``.
        b: ``[C]`` bias.
        padding: ``[x0, x1, y0, y1]`` padding of the upsampled signal (negative values crop).
        gain, slope, clamp: leaky-ReLU output gain, negative slope and symmetric clamp (``None``: no clamp).

    Returns:
        ``[N, C, H_out, W_out]`` with ``H_out = (H*up + y0 + y1 - Ku - Kd + 2 + down - 1) // down`` (likewise W).
    """
    n, c, h, w = x.shape
    x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    piece_format = _piece_format(x)
    plane = (h * up + padding[2] + padding[3]) * (w * up + padding[0] + padding[1]) * x.element_size()
    samples = max(1, CHUNK_BYTES // max(plane * c, 1))  # whole samples per piece
    channels = c if samples > 1 else max(1, CHUNK_BYTES // max(plane, 1))  # else channels per piece
    rows = [
        _cat([_filtered_lrelu_chunk(part.contiguous(memory_format=piece_format), fu, fd, up, down, padding, gain,
                                    slope, clamp)
              for part in batch.split(channels, dim=1)], dim=1)
        for batch in x.split(samples, dim=0)
    ]  # fmt: skip
    return _cat(rows, dim=0).contiguous()


def _cat(pieces: list[torch.Tensor], dim: int) -> torch.Tensor:
    """``torch.cat`` that does not copy a single piece."""
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=dim)


def _filtered_lrelu_chunk(x, fu, fd, up, down, padding, gain, slope, clamp):
    """``filtered_lrelu`` on a block of channels (bias already added)."""
    x0, x1, y0, y1 = padding
    x = _upsample_axis(x, fu, up, x0, x1, axis=3)
    x = _upsample_axis(x, fu, up, y0, y1, axis=2)
    # lrelu(v) * gain == lrelu(v * gain) for gain > 0, so the gain moves into the downsampling filter and
    # the clamp is scaled to match: one pass less over the largest tensor.
    x = _LeakyReluClamp.apply(x, slope, None if clamp is None else clamp / gain)
    return _downsample(x, fd, down, gain)


class _LeakyReluClamp(torch.autograd.Function):
    """``clamp(leaky_relu(x, slope), -c, c)`` with a backward pass that reads only the output.

    Autograd's own backward of ``clamp`` builds several full-size masks. Here the leaky-ReLU gradient is
    one fused kernel on the output (whose sign is the input's), and the clamp mask is applied only when
    some value was actually clamped (a clamped output sits exactly at ``+-c``), which the forward pass
    notes with one min/max reduction. Updated in place when no gradient is needed.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float, clamp: float | None) -> torch.Tensor:
        y = x if not x.requires_grad else x.clone()
        if slope != 1:
            y = F.leaky_relu_(y, slope)
        if clamp is not None:
            y = y.clamp_(-clamp, clamp)
        if x.requires_grad:
            low, high = torch.aminmax(y) if clamp is not None else (None, None)
            ctx.slope = slope
            ctx.clamp = clamp if clamp is not None and (low <= -clamp or high >= clamp) else None
            ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (y,) = ctx.saved_tensors
        if ctx.slope != 1:
            grad = torch.ops.aten.leaky_relu_backward(grad, y, ctx.slope, True)
        if ctx.clamp is not None:
            grad = grad.masked_fill(y.abs() >= ctx.clamp, 0.0)
        return grad, None, None


class _DepthwiseFIR(torch.autograd.Function):
    """A depthwise strided convolution (or its transpose) whose backward pass is the other one.

    The two are each other's adjoint, so the input gradient of either is the other's forward pass: the
    fast forward kernels then serve the backward pass too, where the generic convolution backward is
    several times slower on the CPU. The filter is a constant (a buffer): it gets no gradient.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int], transposed: bool):
        ctx.save_for_backward(weight)
        ctx.stride, ctx.transposed, ctx.size = stride, transposed, x.shape[2:]
        op = F.conv_transpose2d if transposed else F.conv2d
        return op(x, weight, stride=stride, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weight,) = ctx.saved_tensors
        groups = grad.shape[1]
        if ctx.transposed:
            return F.conv2d(grad, weight, stride=ctx.stride, groups=groups), None, None, None
        # The strided convolution dropped the last (size - k) % stride input samples: give them back as zeros.
        padding = [ctx.size[i] - ((grad.shape[2 + i] - 1) * ctx.stride[i] + weight.shape[2 + i]) for i in (0, 1)]
        return (
            F.conv_transpose2d(grad, weight, stride=ctx.stride, output_padding=padding, groups=groups),
            None,
            None,
            None,
        )


def _depthwise_weight(taps: torch.Tensor, channels: int, axis: int, dtype: torch.dtype) -> torch.Tensor:
    """The same 1-D ``taps [K]`` for every channel, as a depthwise weight along ``axis`` (2 or 3)."""
    k = taps.shape[0]
    shape = (channels, 1, 1, k) if axis == 3 else (channels, 1, k, 1)
    return taps.to(dtype).reshape(1, 1, *shape[2:]).expand(shape).contiguous()


def _depthwise(x: torch.Tensor, taps: torch.Tensor, axis: int, stride: int = 1) -> torch.Tensor:
    """Correlate every channel of ``x [N, C, H, W]`` with ``taps`` along ``axis``, keeping every ``stride``-th."""
    strides = (1, stride) if axis == 3 else (stride, 1)
    # One output per group (channel multiplier 1): the fast depthwise kernel on the CPU.
    return _DepthwiseFIR.apply(x, _depthwise_weight(taps, x.shape[1], axis, x.dtype), strides, False)


def _upsample_axis(x: torch.Tensor, f: torch.Tensor | None, up: int, pad0: int, pad1: int, axis: int):
    """Zero-stuff by ``up``, pad by ``(pad0, pad1)`` and convolve with ``f * up`` along one axis.

    A strided transposed convolution computes the zero-stuffed convolution without touching the zeros
    (each output sample uses only the ``Ku / up`` taps that meet real samples: polyphase filtering).
    """
    if f is None:  # up == 1: padding (or cropping) only
        return F.pad(x, [pad0, pad1] if axis == 3 else [0, 0, pad0, pad1])
    length = x.shape[axis]
    strides = (1, up) if axis == 3 else (up, 1)
    full = _DepthwiseFIR.apply(x, _depthwise_weight(f * up, x.shape[1], axis, x.dtype), strides, True)
    # The zero-stuffed, padded signal filtered in "valid" mode starts at sample Ku - 1 - pad0 of the full
    # transposed convolution and ends at sample length*up + pad1 (exclusive).
    start = f.shape[0] - 1 - pad0
    extra_end = length * up + pad1 - full.shape[axis]
    return F.pad(full, [-start, extra_end] if axis == 3 else [0, 0, -start, extra_end])


def _downsample(x: torch.Tensor, f: torch.Tensor | None, down: int, gain: float) -> torch.Tensor:
    """Convolve with ``f * gain`` and keep every ``down``-th sample, computing only the kept ones."""
    if f is None:
        return x * gain if gain != 1 else x
    f = (f * gain).flip(list(range(f.ndim)))
    if f.ndim == 2:
        c, k = x.shape[1], f.shape[0]
        weight = f.to(x.dtype).reshape(1, 1, k, k).expand(c, 1, k, k).contiguous()
        return _DepthwiseFIR.apply(x, weight, (down, down), False)
    # The gain goes on one of the two separable passes only.
    return _depthwise(_depthwise(x, f, axis=3, stride=down), f / gain, axis=2, stride=down)
