"""Fast CPU/GPU implementations of StyleGAN3's two costly ops, in plain PyTorch.

Both compute exactly the math of the official reference ops (``reference_ops.py`` keeps that math in its
literal, slow form; tests check the two agree), but skip the work the literal form wastes:

* ``filtered_lrelu``: the official op zero-stuffs the signal before filtering (so three quarters of the
  multiplies are by zero) and filters at the full rate before throwing away every other sample. Here the
  upsampled signal is held as its polyphase components, each at the input rate (no multiply by an inserted
  zero), and the downsampling computes only the kept samples from them. Every filter pass is then a
  stride-1, channel-multiplier-1 depthwise convolution (separable filters as two 1-D passes), the kernel
  oneDNN runs fastest, in channels-last layout on the CPU (a transposed depthwise convolution ran about 14x
  slower per multiply there, and NCHW depthwise passes 2-30x slower). The output gain is folded into the
  downsampling filter; the leaky ReLU and the sums over phases ride on the filter passes (oneDNN
  post-operations on the CPU) instead of taking passes of their own; the clamp is skipped when a bound from
  the input's peak shows no value can reach it (as at the official 256); forward-only calls run in
  cache-sized pieces.
* ``modulated_conv2d``: instead of building one modulated weight per sample and running a grouped
  convolution, the style scales the input (on the CPU written zero-bordered, so the convolution runs
  unpadded, and its weight gradient is taken as matrix products), one shared convolution runs over the whole
  batch, and the demodulation coefficients (computed with one matrix product) scale the output; a 1x1 kernel
  in channels-last is one matrix product per sample with its modulated weight instead.

Everything is differentiable with autograd.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

# A forward-only filtered_lrelu call is processed in pieces (whole samples, or bands of rows of one sample) whose
# intermediate signal (the up**2 phases of the upsampled signal) stays under this many bytes: the passes over
# it then run from cache (the synthesis forward pass of T/R-64/256 at batch 8 on 2 CPU cores: 0.33-0.76 s at 32 MB
# against 0.37-0.87 s at 256 MB and 0.48-1.20 s at 4 MB), and peak memory stays bounded at high resolutions (a
# 1024x1024 R layer would otherwise hold several GB at once).
CHUNK_BYTES = 32 << 20

# The weight gradient of a CPU convolution is computed as matrix products when its input and output channels both
# reach this many (see _ScaledConv).
MATMUL_WEIGHT_GRAD_CHANNELS = 32

# oneDNN convolution with a fused post-operation (PyTorch's internal op for CPU fusion; absent from builds without
# oneDNN, where the ops run unfused).
_POINTWISE = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() else None
# Its variant that adds the convolution into a given tensor, in place (oneDNN's sum post-operation). The out-of-place
# op's "add" runs a depthwise convolution and then a separate add: this one was 1.3x faster for a 57x57x128 pass,
# and made the R-64 forward pass 1.09-1.14x and its forward+backward pass 1.10-1.27x faster.
_POINTWISE_INTO = getattr(torch.ops.mkldnn, "_convolution_pointwise_", None) if _POINTWISE is not None else None


def _layout(x: torch.Tensor) -> torch.memory_format:
    """Memory format the fast ops compute in: channels-last on the CPU, where oneDNN's depthwise kernels
    vectorise over channels (a stride-1 depthwise pass runs several times faster than in NCHW), NCHW elsewhere."""
    return torch.channels_last if x.device.type == "cpu" else torch.contiguous_format


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
    scales = styles * input_gain.to(styles.dtype)  # [N, I]
    x = _canonical_strides(x.contiguous(memory_format=_layout(x)))
    if weight.shape[2:] == (1, 1) and padding == 0 and _layout(x) == torch.channels_last:
        # A 1x1 kernel (R config) in channels-last: one matrix product per sample with its own modulated weight,
        # [H*W, I] @ [I, O], instead of scaling the activations before and after a shared convolution (two
        # passes over them): 1.3-2.4x faster on the CPU.
        w = weight.flatten(1).t()[None] * scales[:, :, None]  # [N, I, O]
        if demodulate:
            w = w * dcoefs[:, None, :]
        h, wd = x.shape[2:]
        x = torch.bmm(x.permute(0, 2, 3, 1).reshape(n, h * wd, -1), w.to(x.dtype))
        return x.reshape(n, h, wd, -1).permute(0, 3, 1, 2)
    scales = scales.to(x.dtype).reshape(n, -1, 1, 1)
    if _layout(x) == torch.channels_last:
        x = _ScaledConv.apply(x, scales, weight.to(x.dtype), padding)
    else:
        x = F.conv2d(x * scales, weight.to(x.dtype), padding=padding)
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

    Computed in polyphase form (see :class:`_AxisPlan`): the upsampled signal is held as its ``up**2`` phases,
    each at the input rate, so every filter pass is a stride-1 depthwise correlation over real samples only.

    Args:
        x: ``[N, C, H, W]``.
        fu: 1-D upsampling filter ``[Ku]`` (``Ku`` a multiple of ``up``), or ``None`` when ``up == 1``.
        fd: 1-D ``[Kd]`` or 2-D ``[Kd, Kd]`` downsampling filter, or ``None`` for no filter.
        b: ``[C]`` bias.
        up, down: sampling factors, ``up`` a multiple of ``down`` (true of every StyleGAN3 layer).
        padding: ``[x0, x1, y0, y1]`` padding of the upsampled signal (negative values crop).
        gain, slope, clamp: leaky-ReLU output gain, negative slope and symmetric clamp (``None``: no clamp).

    Returns:
        ``[N, C, H_out, W_out]`` with ``H_out = (H*up + y0 + y1 - Ku - Kd + 2 + down - 1) // down`` (likewise W),
        in the memory format of :func:`_layout`.
    """
    if up % down:
        raise ValueError(f"filtered_lrelu: up ({up}) must be a multiple of down ({down})")
    if fu is None and up != 1:
        raise ValueError("filtered_lrelu: upsampling needs an up filter")
    n, c, h, w = x.shape
    x0, x1, y0, y1 = padding
    # The output gain moves into the downsampling filter (lrelu(v) * gain == lrelu(v * gain) for gain > 0) and
    # the clamp is scaled to match; with no filter, it multiplies the activation's output.
    if fd is not None:
        hd = fd.to(torch.float32).flip(list(range(fd.ndim)))
    else:  # no filter: plain subsampling, a one-tap filter (the reference's too)
        hd = torch.ones(1, device=x.device) if down > 1 else None
    plan_x = _AxisPlan(w, up, down, x0, x1, fu, hd, gain)
    plan_y = _AxisPlan(h, up, down, y0, y1, fu, hd, 1.0)
    radial = None if hd is None or hd.ndim == 1 else _down_phase_taps(hd * gain, down)
    out_gain = gain if hd is None else 1.0
    layout = _layout(x)
    x = _combine_and_pad(x, b.to(x.dtype).reshape(1, -1, 1, 1), torch.add, plan_x.input_pad + plan_y.input_pad, layout)
    # The clamp (at clamp / gain before the gain) is skipped when no value can reach it, which is the rule at the
    # official 256: |lrelu(u)| <= max(1, |slope|) * |u|, and the upsampled u is at most the input's peak times each
    # axis' largest phase-tap L1 norm. One read of the input replaces a pass over the up**2 times larger u, and the
    # leaky ReLU can then be fused into the upsampling (the margin covers float32 rounding in u).
    if clamp is not None and _peak(x) * plan_x.up_gain * plan_y.up_gain * max(1.0, abs(slope)) * 1.001 < clamp / gain:
        clamp = None
    act = (slope, None if clamp is None else clamp / gain, out_gain)
    pieces = _pieces(x, plan_x, plan_y)
    if len(pieces) == 1 and pieces[0][1] is None:
        return _filtered_lrelu_piece(x, plan_x, plan_y, radial, act)
    # Pieces write straight into the output (no concatenation pass).
    out_shape = (n, c, plan_y.out_length, plan_x.out_length)
    out = torch.empty(out_shape, dtype=x.dtype, device=x.device, memory_format=layout)
    for samples, band_rows in pieces:
        if band_rows is None:
            _filtered_lrelu_piece(x[samples], plan_x, plan_y, radial, act, out=out[samples])
            continue
        for start in range(0, plan_y.out_length, band_rows):
            band, rows = plan_y.band(start, band_rows)
            target = out[samples, :, start : start + band.out_length]
            _filtered_lrelu_piece(x[samples, :, rows], plan_x, band, radial, act, out=target)
    return out


def _pieces(x: torch.Tensor, plan_x: _AxisPlan, plan_y: _AxisPlan) -> list[tuple[slice, int | None]]:
    """Split the extended input ``x`` of a forward-only call into pieces of about ``CHUNK_BYTES`` of
    intermediates: ``(samples, None)`` for whole samples, or ``(sample, band_rows)`` when one sample is larger,
    cut into bands of ``band_rows`` output rows (all channels: channels-last kernels vectorise over them)."""
    n, c = x.shape[:2]
    if x.requires_grad:  # autograd keeps every piece's intermediates anyway: pieces would only add copies
        return [(slice(0, n), None)]
    sample_bytes = plan_y.phase_length * plan_x.phase_length * plan_x.up**2 * c * x.element_size()
    if sample_bytes <= CHUNK_BYTES:
        size = _even_split(n, CHUNK_BYTES // sample_bytes)
        return [(slice(i, i + size), None) for i in range(0, n, size)]
    rows = _even_split(plan_y.out_length, plan_y.out_length * CHUNK_BYTES // sample_bytes)
    rows = -(-rows // plan_y.q) * plan_y.q  # whole output phases
    return [(slice(i, i + 1), rows) for i in range(n)]


class _AxisPlan:
    """Polyphase form of one axis of ``filtered_lrelu``, for an input of ``length`` samples.

    The reference zero-stuffs ``x`` by ``up``, pads it by ``(pad0, pad1)``, correlates it with the flipped
    ``fu * up`` (giving ``u``) and, after the activation ``a = act(u)``, correlates ``a`` with the flipped ``fd``
    and keeps every ``down``-th sample. Here ``u`` is computed as its ``up`` phases ``U_r[k] = u[up*k + r]``,
    each a correlation of ``x`` with every ``up``-th tap (no multiply by an inserted zero), all phases reading
    one extended copy of ``x``. The downsampling reads ``a`` as its ``down`` phases on the output grid,
    ``A_p[m] = a[down*m + p]`` (for ``Q = up // down > 1`` the interleave of ``U_{down*q + p}``, ``q < Q``):
    output sample ``j`` is the sum over ``p`` of ``A_p`` correlated with every ``down``-th tap of the flipped
    ``fd`` at ``j``, so only kept samples are computed. Every pass is a stride-1 correlation.

    Attributes:
        up_taps: ``[up, Tu]`` taps of the ``up`` phases (``None`` for ``up == 1`` without filter).
        down_taps: ``[down, Td]`` taps of the ``down`` phases, times ``gain`` (``None``: no filter here, none
            at all or a 2-D one, which :func:`_down_phase_taps` splits in 2-D).
        input_pad: ``[lo, hi]`` extension of ``x`` (negative crops) that all up phases read.
        up_gain: the largest L1 norm of a phase's up taps (1 without): no up phase exceeds the input's peak times it.
        phase_length: samples per up phase; ``out_length``: samples of the output.
        up, down, q, reach, up_reach: the sampling factors, ``up // down`` and the number of taps per down and
            per up phase.
    """

    def __init__(self, length, up, down, pad0, pad1, fu, hd, gain):
        ku = 1 if fu is None else fu.shape[0]
        kd = 1 if hd is None else hd.shape[-1]
        self.out_length = (length * up + pad0 + pad1 - ku - kd + 2 + down - 1) // down
        reach = -(-kd // down)  # taps per down phase
        self.phase_length = -(-(self.out_length + reach - 1) // (up // down))
        self.down_taps = _down_phase_taps(hd * gain, down) if hd is not None and hd.ndim == 1 else None
        if fu is None:  # up == 1: the phase is the extended input itself
            self.up_taps, first, taps = None, pad0, 1
        else:
            # U_r[k] = sum_m g[(pad0 - r) % up + up*m] * x[k + m - (pad0 - r) // up], with g = flip(fu) * up;
            # phases start at different input samples (by at most one): align them with a leading zero tap.
            g = fu.to(torch.float32).flip(0) * up
            per_phase = ku // up
            starts = [(pad0 - r) // up for r in range(up)]
            first = starts[0]
            taps = per_phase + first - starts[-1]
            self.up_taps = g.new_zeros(up, taps)
            for r, start in enumerate(starts):
                self.up_taps[r, first - start : first - start + per_phase] = g[(pad0 - r) % up :: up]
        self.input_pad = [first, self.phase_length + taps - 1 - length - first]
        self.up_gain = 1.0 if self.up_taps is None else self.up_taps.abs().sum(1).max().item()
        self.up, self.down, self.q, self.reach, self.up_reach = up, down, up // down, reach, taps

    def band(self, start: int, rows: int) -> tuple[_AxisPlan, slice]:
        """The plan of output samples ``[start, start + rows)`` (``start`` a multiple of ``Q``; clipped to the
        output) and the slice of the extended input it reads."""
        band = copy.copy(self)
        band.out_length = min(rows, self.out_length - start)
        band.phase_length = -(-(band.out_length + self.reach - 1) // self.q)
        first = start // self.q
        return band, slice(first, first + band.phase_length + self.up_reach - 1)


def _down_phase_taps(hd: torch.Tensor, down: int) -> torch.Tensor:
    """``hd [K]`` or ``[K, K]`` -> its ``down`` (or ``down x down``) phases, every ``down``-th tap, zero-padded to
    one length: ``[down, ceil(K / down)]`` or ``[down, down, ceil(K / down), ceil(K / down)]``."""
    reach = -(-hd.shape[0] // down)
    padded = F.pad(hd, [0, reach * down - hd.shape[0]] * hd.ndim)
    if hd.ndim == 1:
        return padded.reshape(reach, down).t()
    return padded.reshape(reach, down, reach, down).permute(1, 3, 0, 2)


def _filtered_lrelu_piece(x, plan_x, plan_y, radial, act, out=None):
    """``filtered_lrelu`` on a block of samples (bias added, input extended by the plans), written into ``out``
    when given."""
    slope, clamp, out_gain = act
    down, q = plan_x.down, plan_x.q
    # A plain leaky ReLU rides on the last upsampling pass (fused into it on the CPU); anything else is a pass of
    # its own, in place.
    fused_slope = slope if slope != 1 and clamp is None and out_gain == 1 and plan_y.up_taps is not None else None
    separate_activation = fused_slope is None and (slope != 1 or clamp is not None or out_gain != 1)
    if plan_x.up_taps is None:  # activated in place below: a copy, not the view (bands share rows)
        phases_x = [x.clone() if separate_activation and plan_y.up_taps is None else x]
    else:
        phases_x = [_fir(x, taps.reshape(1, -1)) for taps in plan_x.up_taps]
    u = [[p if plan_y.up_taps is None else _fir(p, taps.reshape(-1, 1), slope=fused_slope) for p in phases_x]
         for taps in ([None] if plan_y.up_taps is None else plan_y.up_taps)]  # fmt: skip
    a = [  # a[py][px]: the phases on the output grid
        [_interleave([[u[down * i + py][down * j + px] for j in range(q)] for i in range(q)]) for px in range(down)]
        for py in range(down)
    ]
    if separate_activation:
        a = [[_activate(p, slope, clamp, out_gain) for p in row] for row in a]
    if radial is not None:
        result = _fir_sum((a[py][px], radial[py, px]) for py in range(down) for px in range(down))
    else:
        rows = [row[0] for row in a]
        if plan_x.down_taps is not None:  # along x, for each row phase
            rows = [_fir_sum(zip(row, plan_x.down_taps.unsqueeze(1), strict=True)) for row in a]
        result = rows[0]
        if plan_y.down_taps is not None:  # then along y
            result = _fir_sum(zip(rows, plan_y.down_taps.unsqueeze(2), strict=True))
    if result.shape[2:] != (plan_y.out_length, plan_x.out_length):
        result = result[:, :, : plan_y.out_length, : plan_x.out_length]
    return result if out is None else out.copy_(result)


def _fir_sum(pairs) -> torch.Tensor:
    """Sum over ``(x, taps)`` pairs of ``x`` correlated with ``taps`` (see :func:`_fir`), each correlation adding
    the running sum in its own pass."""
    total = None
    for x, taps in pairs:
        total = _fir(x, taps, addend=total)
    return total


def _interleave(v: list[list[torch.Tensor]]) -> torch.Tensor:
    """Phases ``v[i][j] [N, C, K, K']`` -> ``[N, C, Q*K, Q*K']`` with ``out[..., i::Q, j::Q] = v[i][j]``."""
    if len(v) == 1:
        return v[0][0]
    return _Interleave.apply(len(v), *(p for row in v for p in row))


def _activate(x: torch.Tensor, slope: float, clamp: float | None, gain: float) -> torch.Tensor:
    """Leaky ReLU, clamp (at ``clamp / gain``) and output gain (1 when the downsampling filter carries it)."""
    x = _LeakyReluClamp.apply(x, slope, clamp)
    return x * gain if gain != 1 else x


def _combine_and_pad(x: torch.Tensor, other: torch.Tensor, combine, pad: list[int], layout) -> torch.Tensor:
    """``F.pad(combine(x, other), pad)`` in ``layout``, where ``combine`` is ``torch.add`` or ``torch.mul`` and
    ``other`` broadcasts to ``x``: in one pass when no gradient is needed, the combined input written straight into
    the padded tensor and only the border zeroed (``F.pad`` fills all of it first). Negative pads crop."""
    if torch.is_grad_enabled() and (x.requires_grad or other.requires_grad):
        return F.pad(combine(x, other), pad).contiguous(memory_format=layout)
    left, right, top, bottom = pad
    x = x[:, :, max(-top, 0) : x.shape[2] - max(-bottom, 0), max(-left, 0) : x.shape[3] - max(-right, 0)]  # crops
    left, right, top, bottom = (max(p, 0) for p in pad)
    n, c, h, w = x.shape
    out = torch.empty((n, c, top + h + bottom, left + w + right), dtype=x.dtype, device=x.device, memory_format=layout)
    for border in (
        out[:, :, :top],
        out[:, :, top + h :],
        out[:, :, top : top + h, :left],
        out[:, :, top : top + h, left + w :],
    ):
        border.zero_()
    combine(x, other, out=out[:, :, top : top + h, left : left + w])
    return out


def _even_split(total: int, most: int) -> int:
    """Piece size for splitting ``total`` items into as few pieces of at most ``most`` as can be, evenly."""
    pieces = -(-total // max(most, 1))
    return -(-total // pieces)


class _LeakyReluClamp(torch.autograd.Function):
    """``clamp(leaky_relu(x, slope), -c, c)`` in place, with a backward pass that reads only the output.

    ``x`` is always a fresh intermediate of ``filtered_lrelu`` that nothing else reads, so it is updated in
    place (marked dirty for autograd) instead of copied. Autograd's own backward of ``clamp`` builds several
    full-size masks. Here the leaky-ReLU gradient is one fused kernel on the output (whose sign is the
    input's), and the clamp mask is applied only when some value was actually clamped (a clamped output sits
    exactly at ``+-c``), which the forward pass notes with one min/max reduction.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float, clamp: float | None) -> torch.Tensor:
        if slope != 1:
            F.leaky_relu_(x, slope)
        if clamp is not None:
            x.clamp_(-clamp, clamp)
        if x.requires_grad:
            ctx.mark_dirty(x)
            # Reduced over a flat view: a reduction over a channels-last tensor as such is about 15x slower. Compared
            # as tensors: a clamped value is clamp rounded to x's dtype, which may sit below the Python float.
            low, high = torch.aminmax(_flat(x)) if clamp is not None else (None, None)
            ctx.slope = slope
            ctx.clamp = clamp if clamp is not None and bool(low <= -clamp or high >= clamp) else None
            ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (y,) = ctx.saved_tensors
        if ctx.slope != 1:
            grad = torch.ops.aten.leaky_relu_backward(grad, y, ctx.slope, True)
        if ctx.clamp is not None:
            grad = grad.masked_fill(y.abs() >= ctx.clamp, 0.0)
        return grad, None, None


class _ScaledConv(torch.autograd.Function):
    """``conv2d(x * scales, weight, padding=padding)`` for channels-last ``x [N, I, H, W]``, ``scales [N, I, 1, 1]``.

    The pass that scales the input writes it zero-bordered, so the convolution runs unpadded: oneDNN ran the 3x3
    convolutions of T-64 with padding 2 about 10% slower in all (up to 35% for one shape). The backward pass takes
    the input gradient from oneDNN and the weight gradient as ``k*k`` matrix products over the flattened padded
    input (:func:`_conv_weight_grad`) when both channel counts reach ``MATMUL_WEIGHT_GRAD_CHANNELS``: 1.0-1.8x
    faster than oneDNN's weight-gradient kernel at batch 8 there, but 2-7x slower with 8-23 channels, where the
    products are too thin to pay for their k*k reads of the input.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, scales: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
        padded = _combine_and_pad(x, scales, torch.mul, [padding] * 4, torch.channels_last)
        ctx.padding = padding
        ctx.save_for_backward(x, scales, weight, padded)
        return F.conv2d(padded, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, scales, weight, padded = ctx.saved_tensors
        p = ctx.padding
        grad_x = grad_scales = grad_weight = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            scaled = padded[:, :, p : padded.shape[2] - p, p : padded.shape[3] - p]  # its shape is what is read
            mask = [True, False, False]
            grad_scaled = torch.ops.aten.convolution_backward(
                grad, scaled, weight, None, [1, 1], [p, p], [1, 1], False, [0, 0], 1, mask
            )[0]
            if ctx.needs_input_grad[0]:
                grad_x = grad_scaled * scales
            if ctx.needs_input_grad[1]:
                grad_scales = (grad_scaled * x).sum(dim=[2, 3], keepdim=True)
        if ctx.needs_input_grad[2] and min(weight.shape[:2]) >= MATMUL_WEIGHT_GRAD_CHANNELS:
            grad_weight = _conv_weight_grad(padded, grad, weight.shape[2], weight.shape[3])
        elif ctx.needs_input_grad[2]:
            mask = [False, True, False]
            grad_weight = torch.ops.aten.convolution_backward(
                grad, padded, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask
            )[1]
        return grad_x, grad_scales, grad_weight, None


def _conv_weight_grad(x: torch.Tensor, grad: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Weight gradient ``[O, I, kh, kw]`` of the valid convolution of channels-last ``x [N, I, H, W]`` giving an
    output with gradient ``grad [N, O, H - kh + 1, W - kw + 1]``.

    With the gradient zero-extended to ``x``'s size and both flattened to rows of channels (``[N*H*W, .]``), tap
    ``(dy, dx)`` pairs gradient row ``r`` with input row ``r + dy*W + dx``: its weight gradient is one matrix
    product of the gradient rows with the input rows shifted by that offset (views, no im2col copy). The rows
    the extension adds are zero, so the rows that wrap to the next image line or sample contribute nothing.
    """
    n, c, h, w = x.shape
    out_h, out_w = grad.shape[2:]
    extended = grad.new_empty(n, h, w, grad.shape[1])
    extended[:, out_h:].zero_()
    extended[:, :out_h, out_w:].zero_()
    extended[:, :out_h, :out_w] = grad.permute(0, 2, 3, 1)
    grad_rows = extended.reshape(n * h * w, -1)
    x_rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
    taps = grad.new_empty(kh, kw, grad.shape[1], c)
    for dy in range(kh):
        for dx in range(kw):
            offset = dy * w + dx
            torch.mm(grad_rows[: n * h * w - offset].t(), x_rows[offset:], out=taps[dy, dx])
    return taps.permute(2, 3, 0, 1).contiguous()


class _Interleave(torch.autograd.Function):
    """Phases ``[N, C, K, K']`` (``Q*Q`` of them, row-major) -> ``[N, C, Q*K, Q*K']``, ``out[..., i::Q, j::Q]``
    the phase ``(i, j)``; the backward pass hands each phase its strided slice of the gradient, made dense
    (which the convolution reading it needs), instead of autograd's full-size copy per assigned slice."""

    @staticmethod
    def forward(ctx, q: int, *phases: torch.Tensor) -> torch.Tensor:
        first = phases[0]
        shape = (*first.shape[:2], first.shape[2] * q, first.shape[3] * q)
        out = torch.empty(shape, dtype=first.dtype, device=first.device, memory_format=_layout(first))
        for index, phase in enumerate(phases):
            i, j = divmod(index, q)
            out[:, :, i::q, j::q] = phase
        ctx.q = q
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        q, layout = ctx.q, _layout(grad)
        return None, *(grad[:, :, i::q, j::q].contiguous(memory_format=layout) for i in range(q) for j in range(q))


class _DepthwiseFIR(torch.autograd.Function):
    """Stride-1 depthwise correlation ("valid") with a constant filter, optionally followed by a leaky ReLU or
    added to another tensor in the same pass; its backward pass is again a stride-1 correlation.

    The input gradient of a valid correlation is the full correlation of the gradient with the flipped
    taps: the fast forward kernel serves the backward pass too, where the generic convolution backward is
    several times slower on the CPU. The filter is a constant (a buffer): it gets no gradient.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, slope: float | None, addend: torch.Tensor | None):
        y = _depthwise(x, weight, slope, addend)
        if y is addend:
            ctx.mark_dirty(addend)
        ctx.slope, ctx.with_addend = slope, addend is not None
        ctx.save_for_backward(weight, y if slope is not None else None)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        weight, y = ctx.saved_tensors
        grad_addend = grad if ctx.with_addend else None
        if ctx.slope is not None:  # the output's sign is the input's
            grad = torch.ops.aten.leaky_relu_backward(grad, y, ctx.slope, True)
        grad = _canonical_strides(grad.contiguous(memory_format=_layout(grad)))
        padding = (weight.shape[2] - 1, weight.shape[3] - 1)
        grad_x = F.conv2d(grad, weight.flip([2, 3]), padding=padding, groups=grad.shape[1])
        return grad_x, None, None, grad_addend


def _depthwise(x: torch.Tensor, weight: torch.Tensor, slope: float | None, addend: torch.Tensor | None):
    """``conv2d(x, weight, groups=C)``, then ``leaky_relu(., slope)`` or ``. + addend``: on the CPU in one pass, with
    oneDNN's post-operations (a separate pass over a cache-cold result cost a third to a half of the correlation's
    time); elsewhere as separate ops. On the CPU the result is accumulated into ``addend`` (a running sum that
    nothing else reads; :class:`_DepthwiseFIR` marks it dirty for autograd) and returned."""
    groups = x.shape[1]
    if _POINTWISE is not None and x.device.type == "cpu" and x.dtype == torch.float32:
        args = (weight, None, [0, 0], [1, 1], [1, 1], groups)
        if addend is not None and _POINTWISE_INTO is not None:
            _POINTWISE_INTO.binary(_canonical_strides(addend), x, *args, "add", 1.0, None, [], None)
            return addend
        if slope is not None:
            return _POINTWISE.default(x, *args, "leaky_relu", [slope], None)
    y = F.conv2d(x, weight, groups=groups)
    if addend is not None:
        y += addend
    return y if slope is None else F.leaky_relu_(y, slope)


def _fir(
    x: torch.Tensor, taps: torch.Tensor, slope: float | None = None, addend: torch.Tensor | None = None
) -> torch.Tensor:
    """Correlate every channel of ``x [N, C, H, W]`` with ``taps [kh, kw]`` (valid, stride 1), then apply a leaky
    ReLU of negative slope ``slope`` or add ``addend`` (the result's shape), in the same pass."""
    x = _canonical_strides(x)
    c = x.shape[1]
    weight = taps.to(x.dtype).reshape(1, 1, *taps.shape).expand(c, 1, *taps.shape).contiguous()
    return _DepthwiseFIR.apply(x, weight, slope, addend)


def _canonical_strides(x: torch.Tensor) -> torch.Tensor:
    """``x`` with the batch stride a channels-last tensor of its shape would have, when the batch is one sample.

    A convolution's channels-last output for one sample comes back with batch stride ``C``; oneDNN then takes
    a generic path for it as an input, 13-30x slower (a 281x281x8 depthwise pass: 2.4-6 ms against 0.2 ms).
    The stride of a size-1 dimension addresses nothing, so resetting it is free and exact.
    """
    n, c, h, w = x.shape
    if n != 1 or x.stride(0) == c * h * w or not x.is_contiguous(memory_format=torch.channels_last):
        return x
    return x.as_strided(x.shape, (c * h * w, 1, w * c, c), x.storage_offset())


def _peak(x: torch.Tensor) -> float:
    """``max |x|`` (0 for an empty tensor), reduced over a flat view: a reduction over a channels-last tensor as
    such is about 15x slower."""
    if x.numel() == 0:
        return 0.0
    low, high = torch.aminmax(_flat(x.detach()))
    return max(-low.item(), high.item())


def _flat(x: torch.Tensor) -> torch.Tensor:
    """A 1-D view of the elements of ``x [N, C, H, W]`` in memory order (a copy if ``x`` is not dense)."""
    return x.permute(0, 2, 3, 1).reshape(-1) if x.is_contiguous(memory_format=torch.channels_last) else x.reshape(-1)
