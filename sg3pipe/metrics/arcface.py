"""The identity loss of pSp/e4e/ReStyle training: ArcFace IR-SE50 (``model_ir_se50.pth``) read from a file.

The network and its parameter names are those of the official ``Backbone(input_size=112, num_layers=50,
mode="ir_se")`` (TreB1eN's InsightFace port used by pSp): a 3x3 stem, the IR-SE50 body (3, 4, 14, 3 units of
64, 128, 256, 512 channels, the same units as the encoders' backbone) and an output layer (BN, dropout,
flatten, linear to 512, BN1d), whose output is L2-normalised. The loss follows the official ``IDLoss``: the
256 x 256 image is cropped to rows 35:223 and columns 32:220 (the face), pooled to 112 x 112 and embedded;
the loss is ``1 - cos(embedding(y_hat), embedding(y))``. Other sizes are resized to 256 first.
Nothing is downloaded: the weights file is configured (``models.arcface``); a missing file is a clear error.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sg3pipe.io.errors import ModelFileError
from sg3pipe.io.official_pickle import load_torch_file
from sg3pipe.networks.encoders import BottleneckIRSE

STAGES = ((64, 3), (128, 4), (256, 14), (512, 3))  # (channels, units) of IR-SE50 (the official get_blocks(50))
WHERE_TO_GET = (
    "pSp's model_ir_se50.pth (ArcFace IR-SE50, from the pixel2style2pixel / stylegan3-editing READMEs): "
    "download it on a machine with network access and set models.arcface to its path"
)


class ArcFaceFileError(ModelFileError):
    """An ArcFace weights file cannot be used: truncated, not a state dict, or not IR-SE50's weights."""

    kind = "ArcFace weights"
    expected = WHERE_TO_GET


class ArcFaceIRSE50(nn.Module):
    """``[N, 3, 112, 112]`` faces in [-1, 1] -> ``[N, 512]`` unit-norm identity embeddings."""

    def __init__(self, drop_ratio: float = 0.6):
        super().__init__()
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)
        )
        units, in_channels = [], 64
        for channels, count in STAGES:
            for idx in range(count):
                units.append(BottleneckIRSE(in_channels, channels, 2 if idx == 0 else 1))
                in_channels = channels
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512),
            nn.Dropout(drop_ratio),
            nn.Flatten(),
            nn.Linear(512 * 7 * 7, 512),
            nn.BatchNorm1d(512),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


class IdentityLoss(nn.Module):
    """The official ``IDLoss``: ``(y_hat, y)`` ``[N, 3, H, W]`` in [-1, 1] -> ``[N]`` values ``1 - cos`` of their
    ArcFace embeddings (0 for the same face). The network is frozen; gradients flow to ``y_hat``."""

    def __init__(self, net: ArcFaceIRSE50):
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` -> ``[N, 512]``: resized to 256, the face crop, pooled to 112, embedded."""
        if images.shape[-2:] != (256, 256):
            images = F.interpolate(images, size=(256, 256), mode="bilinear", align_corners=False)
        return self.net(F.adaptive_avg_pool2d(images[:, :, 35:223, 32:220], (112, 112)))

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.embed(y)
        return 1 - (self.embed(y_hat) * target).sum(dim=1)

    def train(self, mode: bool = True) -> IdentityLoss:
        super().train(mode)
        self.net.eval()  # batch statistics of the frozen network are never updated
        return self


def load_identity_loss(path: str | os.PathLike, device: str | torch.device = "cpu") -> IdentityLoss:
    """The identity loss with the ArcFace weights of ``path`` (a state dict with the official names).

    Raises:
        FileNotFoundError: no file at ``path`` (the message says where to get it).
        ArcFaceFileError: the file is not an IR-SE50 ArcFace state dict (a ``ValueError``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ArcFace weights file {path} does not exist; expected {WHERE_TO_GET}")
    state_dict = load_torch_file(path, ArcFaceFileError, "a state dict has no need of (only tensors are allowed)")
    if not isinstance(state_dict, dict):
        raise ArcFaceFileError(path, f"holds a {type(state_dict).__name__}, not a state dict")
    net = ArcFaceIRSE50()
    try:
        net.load_state_dict(state_dict)
    except RuntimeError as err:
        problem = str(err).splitlines()[1] if "\n" in str(err) else str(err)
        raise ArcFaceFileError(path, f"is not an ArcFace IR-SE50 state dict: {problem.strip()[:300]}") from None
    return IdentityLoss(net).to(device)
