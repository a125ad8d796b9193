"""ReStyle encoders: an IR-SE or ResNet34 backbone and one style head per W+ row, with the official names.

Parameter and buffer names and shapes equal those of the stylegan3-editing repo's
``inversion/models/encoders`` (ReStyle, Alaluf et al. 2021), so the official checkpoints load as they are:

* pSp ``BackboneEncoder`` (IR-SE50) and ``ResNetBackboneEncoder`` (ResNet34): head ``i`` predicts row ``i``;
* e4e ``ProgressiveBackboneEncoder`` / ``ResNetProgressiveBackboneEncoder``: head 0 predicts ``w0`` for all
  rows and heads 1..15 add a delta to their row (all deltas on, the official inference stage).

Every head reads the backbone's last feature map (16 x 16 for the official 256 x 256 input); these encoders
have no feature pyramid (that is pSp's ``GradualStyleEncoder``, which ReStyle for StyleGAN3 does not use).
The input is ``[N, 6, 256, 256]``: the target image and the current reconstruction, both in [-1, 1]. The output
is what ReStyle adds to the current latent, ``[N, 16, w_dim]``.

Depth and width are arguments (``stage_units``, ``stage_widths``, ``input_size``) so that a small encoder with
the same structure can be trained on two CPU cores; :func:`official_config` gives the official ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from sg3pipe.networks.stylegan3 import FullyConnectedLayer, _assert_shape

# encoder_type of the official checkpoints' opts -> (backbone, progressive)
OFFICIAL_ENCODER_TYPES = {
    "BackboneEncoder": ("ir_se", False),
    "ResNetBackboneEncoder": ("resnet", False),
    "ProgressiveBackboneEncoder": ("ir_se", True),
    "ResNetProgressiveBackboneEncoder": ("resnet", True),
}
# Units per stage of the official backbones (helpers.get_blocks(50) and torchvision's resnet34), and widths.
OFFICIAL_STAGE_UNITS = {"ir_se": (3, 4, 14, 3), "resnet": (3, 4, 6, 3)}
OFFICIAL_STAGE_WIDTHS = (64, 128, 256, 512)
OFFICIAL_INPUT_SIZE = 256  # images and reconstructions are pooled to this size (the official face_pool)
_BODY_UNIT = re.compile(r"body\.(\d+)\.")
_HEAD_CONV = re.compile(r"styles\.0\.convs\.(\d+)\.weight")


def official_config(encoder_type: str, w_dim: int = 512, n_styles: int = 16, input_nc: int = 6) -> dict:
    """The :class:`BackboneEncoder` arguments of an official ``encoder_type`` (see OFFICIAL_ENCODER_TYPES)."""
    if encoder_type not in OFFICIAL_ENCODER_TYPES:
        raise ValueError(f"unknown encoder_type {encoder_type!r}; expected one of {sorted(OFFICIAL_ENCODER_TYPES)}")
    backbone, progressive = OFFICIAL_ENCODER_TYPES[encoder_type]
    return {
        "backbone": backbone,
        "progressive": progressive,
        "w_dim": w_dim,
        "n_styles": n_styles,
        "input_nc": input_nc,
        "input_size": OFFICIAL_INPUT_SIZE,
        "stage_units": list(OFFICIAL_STAGE_UNITS[backbone]),
        "stage_widths": list(OFFICIAL_STAGE_WIDTHS),
    }


def infer_encoder_config(state_dict: Mapping[str, torch.Tensor], encoder_type: str, w_dim: int, n_styles: int) -> dict:
    """The :class:`BackboneEncoder` arguments of an encoder state dict (official names) of ``encoder_type``.

    The backbone's stages are read from the units' widths: a stage starts at unit 0 and at every unit with a
    projection shortcut (``shortcut_layer`` / ``downsample``), which is where the official backbones change width
    and halve the resolution. The heads' conv count gives the side of the last feature map (``2**convs``: 16 for
    the official four), hence the input size. ``w_dim`` and ``n_styles`` are the generator's; weights that do not
    fit them show up when the state dict is loaded. Only shapes are read (``meta`` tensors work).

    Raises:
        ValueError: the names are not those of a ``encoder_type`` encoder.
    """
    if encoder_type not in OFFICIAL_ENCODER_TYPES:
        raise ValueError(f"unknown encoder_type {encoder_type!r}; expected one of {sorted(OFFICIAL_ENCODER_TYPES)}")
    backbone, progressive = OFFICIAL_ENCODER_TYPES[encoder_type]
    stem, first_conv, shortcut = {
        "ir_se": ("input_layer.0.weight", "res_layer.1.weight", "shortcut_layer.0.weight"),
        "resnet": ("conv1.weight", "conv1.weight", "downsample.0.weight"),
    }[backbone]
    units = sorted({int(m.group(1)) for key in state_dict if (m := _BODY_UNIT.match(key))})
    if stem not in state_dict or not units or units != list(range(len(units))):
        raise ValueError(f"a {encoder_type} has {stem} and body units body.0..body.N (found units {units[:40]})")
    stage_units, stage_widths = [], []
    for idx in units:
        if f"body.{idx}.{first_conv}" not in state_dict:
            raise ValueError(f"body.{idx}.{first_conv} is missing")
        if idx == 0 or f"body.{idx}.{shortcut}" in state_dict:
            stage_units.append(0)
            stage_widths.append(int(state_dict[f"body.{idx}.{first_conv}"].shape[0]))
        stage_units[-1] += 1
    head_convs = sum(1 for key in state_dict if _HEAD_CONV.fullmatch(key))
    if head_convs == 0:
        raise ValueError("the style heads styles.0.convs.* are missing")
    config = {
        "backbone": backbone,
        "progressive": progressive,
        "w_dim": w_dim,
        "n_styles": n_styles,
        "input_nc": int(state_dict[stem].shape[1]),
        "input_size": 2**head_convs << len(stage_units),
        "stage_units": stage_units,
        "stage_widths": stage_widths,
    }
    gate = state_dict.get("body.0.res_layer.5.fc1.weight")
    if gate is not None and stage_widths[0] // int(gate.shape[0]) != 16:
        config["se_reduction"] = stage_widths[0] // int(gate.shape[0])
    return config


class SEModule(nn.Module):
    """Squeeze-and-excitation: scale each channel by a gate computed from the channel means."""

    def __init__(
        self,
        channels: int,  # Number of input and output channels.
        reduction: int,  # Bottleneck of the gate: channels // reduction.
    ):
        super().__init__()
        if channels // reduction < 1:
            raise ValueError(f"SE reduction {reduction} leaves no channel of {channels}; lower se_reduction")
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class BottleneckIRSE(nn.Module):
    """IR-SE residual unit (official ``bottleneck_IR_SE``): BN, 3x3 conv, PReLU, strided 3x3 conv, BN, SE."""

    def __init__(
        self,
        in_channels: int,  # Number of input channels.
        out_channels: int,  # Number of output channels ("depth").
        stride: int,  # Spatial stride of the unit (1 or 2).
        se_reduction: int = 16,  # Bottleneck ratio of the squeeze-and-excitation gate.
    ):
        super().__init__()
        self.stride = stride
        # Equal widths: the official MaxPool2d(1, stride) shortcut, a parameter-free subsampling (see forward).
        self.shortcut_layer = (
            None
            if in_channels == out_channels
            else nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
            nn.PReLU(out_channels),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            SEModule(out_channels, se_reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut_layer is None:
            shortcut = x[:, :, :: self.stride, :: self.stride]
        else:
            shortcut = self.shortcut_layer(x)
        return self.res_layer(x) + shortcut


def resnet_unit(in_channels: int, out_channels: int, stride: int) -> BasicBlock:
    """torchvision's ResNet34 unit (what the official ResNet encoders take from ``resnet34()``)."""
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    return BasicBlock(in_channels, out_channels, stride=stride, downsample=downsample)


class GradualStyleBlock(nn.Module):
    """One style head: strided 3x3 convs (leaky ReLU 0.01) down to 1x1, then an equalised-lr linear layer."""

    def __init__(
        self,
        in_channels: int,  # Channels of the backbone's last feature map.
        out_channels: int,  # Channels of the convs and of the output vector (w_dim).
        spatial: int,  # Side of the backbone's last feature map (a power of two).
    ):
        super().__init__()
        self.out_channels = out_channels
        # log2(spatial) halvings reach 1x1; the official block always has at least one conv.
        num_convs = max(int(math.log2(spatial)), 1)
        layers = []
        for idx in range(num_convs):
            layers += [
                nn.Conv2d(in_channels if idx == 0 else out_channels, out_channels, kernel_size=3, stride=2, padding=1),
                nn.LeakyReLU(),
            ]
        self.convs = nn.Sequential(*layers)
        self.linear = FullyConnectedLayer(out_channels, out_channels)  # the official EqualLinear, lr_mul 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels, spatial, spatial]`` -> ``[N, out_channels]``."""
        x = self.convs(x)
        return self.linear(x.reshape(x.shape[0], self.out_channels))


class BackboneEncoder(nn.Module):
    """The ReStyle encoder: ``[N, input_nc, input_size, input_size]`` -> what to add to ``ws``, ``[N, n_styles,
    w_dim]``. With the :func:`official_config` arguments its state dict is the official encoder's."""

    def __init__(
        self,
        backbone: str = "ir_se",  # "ir_se" (IR-SE50 family) or "resnet" (ResNet34 family).
        progressive: bool = False,  # False: pSp, one row per head; True: e4e, w0 plus per-row deltas.
        w_dim: int = 512,  # Intermediate latent (W) dimensionality = the heads' width.
        n_styles: int = 16,  # Number of W+ rows (the generator's num_ws).
        input_nc: int = 6,  # Input channels: the image and the current reconstruction, 3 each.
        input_size: int = OFFICIAL_INPUT_SIZE,  # Side of the (square) input in pixels.
        stage_units: tuple[int, ...] | list[int] = OFFICIAL_STAGE_UNITS["ir_se"],  # Residual units per stage.
        stage_widths: tuple[int, ...] | list[int] = OFFICIAL_STAGE_WIDTHS,  # Channels of each stage.
        se_reduction: int = 16,  # Bottleneck ratio of the IR-SE units' squeeze-and-excitation gates.
    ):
        super().__init__()
        if backbone not in OFFICIAL_STAGE_UNITS:
            raise ValueError(f"backbone {backbone!r}: expected one of {sorted(OFFICIAL_STAGE_UNITS)}")
        if len(stage_units) != len(stage_widths) or not stage_units or min(stage_units) < 1:
            raise ValueError(f"stage_units {stage_units} and stage_widths {stage_widths}: one count >= 1 per width")
        # Each stage halves the resolution (ResNet: the stem and stages 2.. do), so the heads see input / 2**stages.
        self.spatial = input_size >> len(stage_units)
        if self.spatial < 1 or self.spatial << len(stage_units) != input_size or self.spatial & (self.spatial - 1):
            raise ValueError(f"input_size {input_size} must be a power of two times 2**{len(stage_units)} (stages)")
        self.init_kwargs = dict(
            backbone=backbone,
            progressive=progressive,
            w_dim=w_dim,
            n_styles=n_styles,
            input_nc=input_nc,
            input_size=input_size,
            stage_units=list(stage_units),
            stage_widths=list(stage_widths),
            se_reduction=se_reduction,
        )
        self.backbone, self.progressive = backbone, progressive
        self.w_dim, self.n_styles, self.input_nc, self.input_size = w_dim, n_styles, input_nc, input_size

        stem = stage_widths[0]
        units = []
        in_channels = stem
        if backbone == "ir_se":
            self.input_layer = nn.Sequential(
                nn.Conv2d(input_nc, stem, kernel_size=3, stride=1, padding=1, bias=False),
                nn.BatchNorm2d(stem),
                nn.PReLU(stem),
            )
            for count, width in zip(stage_units, stage_widths, strict=True):
                for idx in range(count):
                    units.append(BottleneckIRSE(in_channels, width, 2 if idx == 0 else 1, se_reduction))
                    in_channels = width
        else:
            self.conv1 = nn.Conv2d(input_nc, stem, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(stem)
            self.relu = nn.PReLU(stem)
            for stage, (count, width) in enumerate(zip(stage_units, stage_widths, strict=True)):
                for idx in range(count):
                    units.append(resnet_unit(in_channels, width, 2 if idx == 0 and stage > 0 else 1))
                    in_channels = width
        self.body = nn.Sequential(*units)
        self.styles = nn.ModuleList(GradualStyleBlock(in_channels, w_dim, self.spatial) for _ in range(n_styles))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone: ``[N, input_nc, input_size, input_size]`` -> ``[N, stage_widths[-1], spatial, spatial]``."""
        _assert_shape(x, [None, self.input_nc, self.input_size, self.input_size], "encoder input")
        if self.backbone == "ir_se":
            x = self.input_layer(x)
        else:
            x = self.relu(self.bn1(self.conv1(x)))
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, input_nc, input_size, input_size]`` (image and reconstruction in [-1, 1]) -> ``[N, n_styles,
        w_dim]``: pSp: row i from head i; e4e: ``w0`` (head 0) in every row, plus head i's delta in row i >= 1."""
        x = self.features(x)
        if not self.progressive:
            return torch.stack([head(x) for head in self.styles], dim=1)
        w0 = self.styles[0](x)
        return torch.stack([w0] + [w0 + head(x) for head in self.styles[1:]], dim=1)
