"""The StyleGAN3 generator (T and R configs, any resolution) with per-sample transforms and StyleSpace.

Parameter and buffer names equal NVlabs' ``training/networks_stylegan3.py`` (github.com/NVlabs/stylegan3), so
official weights load as they are, and the math follows that module (Karras et al. 2021, "Alias-Free
Generative Adversarial Networks", arXiv:2106.12423). Differences from the official module, all deliberate:

* the input transform is an argument (``G.synthesis(ws, transform=...)``, ``[3, 3]`` or ``[N, 3, 3]``)
  instead of a mutable buffer that every caller must set and reset; the ``transform`` buffer is kept
  (identity) only so state dicts stay interchangeable, and is used when no transform is passed;
* the costly ops are computed in polyphase form (``ops.py``); ``impl="reference"`` runs the literal official math
  (``reference_ops.py``) on the same weights;
* StyleSpace: ``G.synthesis.styles(ws)`` returns every layer's style vector and
  ``G.synthesis(styles=S)`` renders from them.

Shapes: ``z`` ``[N, z_dim]``, ``ws`` ``[N, num_ws, w_dim]`` with ``num_ws = 16``, images
``[N, img_channels, img_resolution, img_resolution]`` in about ``[-1, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sg3pipe.networks import ops, reference_ops
from sg3pipe.networks.filters import (
    InputSpec,
    LayerSpec,
    design_lowpass_filter,
    layer_padding,
    synthesis_schedule,
)

IMPLS = {"fast": ops, "reference": reference_ops}


def _assert_shape(tensor: torch.Tensor, shape: list[int | None], what: str) -> None:
    if tensor.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, tensor.shape, strict=True)):
        expected = "[" + ", ".join("N" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{what}: expected shape {expected}, got {list(tensor.shape)}")


class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalised learning rate: weights are stored unscaled and scaled at run time."""

    def __init__(
        self,
        in_features: int,  # Number of input features.
        out_features: int,  # Number of output features.
        activation: str = "linear",  # "linear" or "lrelu" (slope 0.2, gain sqrt(2)).
        bias: bool = True,  # Apply an additive bias.
        lr_multiplier: float = 1.0,  # Learning-rate multiplier of this layer.
        weight_init: float = 1.0,  # Initial standard deviation of the weight.
        bias_init: float | list[float] = 0.0,  # Initial value(s) of the bias.
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = torch.nn.Parameter(torch.from_numpy(init / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        x = F.linear(x, w, b)
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2) * np.sqrt(2)
        return x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(torch.nn.Module):
    """z (and optional class c) -> w, broadcast to ``num_ws`` rows, with truncation toward ``w_avg``."""

    def __init__(
        self,
        z_dim: int,  # Input latent (Z) dimensionality.
        c_dim: int,  # Conditioning label (C) dimensionality, 0 = none.
        w_dim: int,  # Intermediate latent (W) dimensionality.
        num_ws: int,  # Number of intermediate latents to output.
        num_layers: int = 2,  # Number of mapping layers.
        lr_multiplier: float = 0.01,  # Learning-rate multiplier of the mapping layers.
        w_avg_beta: float = 0.998,  # Decay of the running average of w during training.
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        self.embed = FullyConnectedLayer(c_dim, w_dim) if c_dim > 0 else None
        features = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation="lrelu", lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """``z [N, z_dim]`` (and ``c [N, c_dim]``) -> ``ws [N, num_ws, w_dim]``.

        Truncation moves rows ``[:truncation_cutoff]`` (all when ``None``) to ``w_avg + psi * (w - w_avg)``.
        """
        _assert_shape(z, [None, self.z_dim], "z")
        x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this generator is conditional: pass c of shape [N, {self.c_dim}]")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.to(torch.float32)))], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            head = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
            x = torch.cat([head, x[:, cutoff:]], dim=1)
        return x


class SynthesisInput(torch.nn.Module):
    """Fourier features at frequencies within ``bandwidth``, rotated/translated by ``w0`` and the transform."""

    def __init__(
        self,
        w_dim: int,  # Intermediate latent (W) dimensionality.
        channels: int,  # Number of output channels.
        size: int,  # Output spatial size (square), margin included.
        sampling_rate: float,  # Output sampling rate (samples per unit).
        bandwidth: float,  # Output bandwidth (cycles per unit).
    ):
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, size
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))  # kept for state-dict compatibility only
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def style(self, w: torch.Tensor) -> torch.Tensor:
        """``w0 [N, w_dim]`` -> ``t [N, 4]`` = (cos, sin, tx, ty) with ``(cos, sin)`` of unit length."""
        t = self.affine(w)
        return t / t[:, :2].norm(dim=1, keepdim=True)

    def forward(self, t: torch.Tensor, transform: torch.Tensor | None) -> torch.Tensor:
        """Sample the features: ``t [N, 4]`` (from :meth:`style`), ``transform [3, 3] or [N, 3, 3]``.

        Returns:
            ``[N, channels, size, size]``.
        """
        n = t.shape[0]
        transform = self.transform if transform is None else transform.to(t.device, torch.float32)
        transform = transform.expand(n, 3, 3)
        zero, one = torch.zeros_like(t[:, 0]), torch.ones_like(t[:, 0])
        m_r = torch.stack([t[:, 0], -t[:, 1], zero, t[:, 1], t[:, 0], zero, zero, zero, one], 1).reshape(n, 3, 3)
        m_t = torch.stack([one, zero, -t[:, 2], zero, one, -t[:, 3], zero, zero, one], 1).reshape(n, 3, 3)
        transform = m_r @ m_t @ transform
        freqs = self.freqs.unsqueeze(0)  # [N, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transform[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ transform[:, :2, :2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        grid = (
            torch.arange(self.size, device=t.device, dtype=torch.float32) + 0.5 - self.size / 2
        ) / self.sampling_rate
        # phase at pixel (row, col): x . f + phase, with x = (grid[col], grid[row])
        arg = (
            grid.reshape(1, 1, -1, 1) * freqs[:, None, None, :, 0]
            + grid.reshape(1, -1, 1, 1) * freqs[:, None, None, :, 1]
            + phases[:, None, None, :]
        )  # [N, H, W, C]
        x = torch.sin(arg * (2 * np.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(torch.nn.Module):
    """Modulated convolution followed by the alias-free filtered leaky ReLU (or ToRGB for the last layer)."""

    def __init__(
        self,
        w_dim: int,  # Intermediate latent (W) dimensionality.
        spec: LayerSpec,  # Shape of this layer: channels, sizes, sampling rates, cutoffs (filters.py).
        conv_kernel: int = 3,  # Convolution kernel size (ignored for ToRGB, which is 1x1).
        filter_size: int = 6,  # Low-pass filter taps per unit of up/down factor.
        lrelu_upsampling: int = 2,  # Oversampling factor of the nonlinearity.
        use_radial_filters: bool = False,  # Radially symmetric downsampling filters (R config).
        conv_clamp: float | None = 256,  # Clamp of the layer output.
        magnitude_ema_beta: float = 0.999,  # Decay of the running input magnitude during training.
    ):
        super().__init__()
        self.spec = spec
        self.w_dim = w_dim
        self.is_torgb = spec.is_torgb
        self.in_channels, self.out_channels = spec.in_channels, spec.out_channels
        self.in_size, self.out_size = spec.in_size, spec.out_size
        self.conv_kernel = 1 if spec.is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        tmp_sampling_rate = max(spec.in_sampling_rate, spec.out_sampling_rate) * (
            1 if spec.is_torgb else lrelu_upsampling
        )

        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([spec.out_channels, spec.in_channels, self.conv_kernel, self.conv_kernel])
        )
        self.bias = torch.nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        self.up_factor = int(np.rint(tmp_sampling_rate / spec.in_sampling_rate))
        self.down_factor = int(np.rint(tmp_sampling_rate / spec.out_sampling_rate))
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not spec.is_torgb else 1
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not spec.is_torgb else 1
        self.down_radial = use_radial_filters and not spec.is_critically_sampled
        self.register_buffer(
            "up_filter",
            design_lowpass_filter(self.up_taps, spec.in_cutoff, spec.in_half_width * 2, tmp_sampling_rate),
        )
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(
                self.down_taps,
                spec.out_cutoff,
                spec.out_half_width * 2,
                tmp_sampling_rate,
                radial=self.down_radial,
            ),
        )
        self.padding = layer_padding(
            spec.in_size,
            spec.out_size,
            self.conv_kernel,
            self.up_factor,
            self.down_factor,
            self.up_taps,
            self.down_taps,
        )

    def style(self, w: torch.Tensor) -> torch.Tensor:
        """``w [N, w_dim]`` -> the layer's style vector ``[N, in_channels]`` (ToRGB: weight gain included)."""
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / np.sqrt(self.in_channels * self.conv_kernel**2)
        return styles

    def forward(
        self,
        x: torch.Tensor,
        styles: torch.Tensor,
        impl: str = "fast",
        fp16: bool = False,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """``x [N, in_channels, in_size, in_size]``, ``styles [N, in_channels]``.

        Returns:
            ``[N, out_channels, out_size, out_size]``.
        """
        _assert_shape(x, [None, self.in_channels, self.in_size, self.in_size], f"{self.spec.name} input")
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        op = IMPLS[impl]
        dtype = torch.float16 if (fp16 and self.spec.use_fp16 and x.device.type == "cuda") else torch.float32
        x = op.modulated_conv2d(
            x.to(dtype),
            self.weight,
            styles,
            demodulate=not self.is_torgb,
            input_gain=self.magnitude_ema.rsqrt(),
            padding=self.conv_kernel - 1,
        )
        x = op.filtered_lrelu(
            x,
            self.up_filter,
            self.down_filter,
            self.bias,
            self.up_factor,
            self.down_factor,
            self.padding,
            gain=1.0 if self.is_torgb else float(np.sqrt(2)),
            slope=1.0 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )
        return x


class SynthesisNetwork(torch.nn.Module):
    """ws -> image through the Fourier input layer and ``num_layers + 1`` synthesis layers."""

    def __init__(
        self,
        w_dim: int,  # Intermediate latent (W) dimensionality.
        img_resolution: int,  # Output image resolution.
        img_channels: int,  # Number of colour channels.
        channel_base: int = 32768,  # Overall multiplier for the number of channels.
        channel_max: int = 512,  # Maximum number of channels in any layer.
        num_layers: int = 14,  # Number of layers, excluding the Fourier input and ToRGB.
        num_critical: int = 2,  # Number of critically sampled layers at the end.
        first_cutoff: float = 2,  # Cutoff frequency of the first layer (f_c,0).
        first_stopband: float = 2**2.1,  # Minimum stopband of the first layer (f_t,0).
        last_stopband_rel: float = 2**0.3,  # Minimum stopband of the last layer, relative to its cutoff.
        margin_size: int = 10,  # Extra samples outside the image on each side.
        output_scale: float = 0.25,  # Scale factor of the output image.
        num_fp16_res: int = 4,  # Layers above this many octaves below the output may run in fp16 on CUDA.
        **layer_kwargs,  # Arguments of SynthesisLayer (conv_kernel, use_radial_filters, ...).
    ):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.output_scale = output_scale
        input_spec, self.layer_specs = synthesis_schedule(
            img_resolution,
            img_channels,
            channel_base,
            channel_max,
            num_layers,
            num_critical,
            first_cutoff,
            first_stopband,
            last_stopband_rel,
            margin_size,
            num_fp16_res,
        )
        self.input_spec: InputSpec = input_spec
        self.input = SynthesisInput(
            w_dim, input_spec.channels, input_spec.size, input_spec.sampling_rate, input_spec.bandwidth
        )
        self.layer_names = []
        for spec in self.layer_specs:
            setattr(self, spec.name, SynthesisLayer(w_dim, spec, **layer_kwargs))
            self.layer_names.append(spec.name)

    def styles(self, ws: torch.Tensor) -> dict[str, torch.Tensor]:
        """StyleSpace of ``ws [N, num_ws, w_dim]``: ``{"input": [N, 4], layer name: [N, in_channels]}``."""
        _assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        styles = {"input": self.input.style(ws[:, 0])}
        for idx, name in enumerate(self.layer_names):
            styles[name] = getattr(self, name).style(ws[:, idx + 1])
        return styles

    def forward(
        self,
        ws: torch.Tensor | None = None,
        transform: torch.Tensor | np.ndarray | None = None,
        styles: dict[str, torch.Tensor] | None = None,
        impl: str = "fast",
        fp16: bool = False,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """Render images from ``ws [N, num_ws, w_dim]`` or from StyleSpace ``styles``.

        Args:
            transform: ``[3, 3]`` or ``[N, 3, 3]``, meaning what NVlabs' ``synthesis.input.transform`` means
                (the inverse of the content-moving matrix, see ``sg3pipe.transforms``); ``None``: the buffer.
            impl: ``"fast"`` or ``"reference"`` (the literal official math, for checks and benchmarks).
            fp16: run the high-resolution layers in float16 when on CUDA (ignored on the CPU).

        Returns:
            ``[N, img_channels, img_resolution, img_resolution]`` float32.
        """
        if (ws is None) == (styles is None):
            raise ValueError("pass exactly one of ws and styles")
        if styles is None:
            styles = self.styles(ws)
        if transform is not None:
            transform = torch.as_tensor(transform, dtype=torch.float32)
            if transform.shape[-2:] != (3, 3) or transform.ndim not in (2, 3):
                raise ValueError(f"transform: expected shape [3, 3] or [N, 3, 3], got {list(transform.shape)}")
        x = self.input(styles["input"], transform)
        for name in self.layer_names:
            x = getattr(self, name)(x, styles[name], impl=impl, fp16=fp16, update_emas=update_emas)
        return (x.to(torch.float32) * self.output_scale).contiguous()  # NCHW, whatever layout the ops used


class Generator(torch.nn.Module):
    """StyleGAN3 generator: mapping network + synthesis network. Constructor arguments equal the official ones."""

    def __init__(
        self,
        z_dim: int,  # Input latent (Z) dimensionality.
        c_dim: int,  # Conditioning label (C) dimensionality.
        w_dim: int,  # Intermediate latent (W) dimensionality.
        img_resolution: int,  # Output resolution.
        img_channels: int,  # Number of output colour channels.
        mapping_kwargs: dict | None = None,  # Arguments of MappingNetwork.
        **synthesis_kwargs,  # Arguments of SynthesisNetwork and SynthesisLayer.
    ):
        super().__init__()
        self.init_kwargs = dict(
            z_dim=z_dim,
            c_dim=c_dim,
            w_dim=w_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            mapping_kwargs=dict(mapping_kwargs or {}),
            **synthesis_kwargs,
        )
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **(mapping_kwargs or {}))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        transform: torch.Tensor | np.ndarray | None = None,
        update_emas: bool = False,
        **synthesis_kwargs,
    ) -> torch.Tensor:
        """``z [N, z_dim]`` -> images ``[N, C, H, W]``; see ``MappingNetwork`` and ``SynthesisNetwork``."""
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(ws, transform=transform, update_emas=update_emas, **synthesis_kwargs)
