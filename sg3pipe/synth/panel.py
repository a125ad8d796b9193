"""The reading panel: attribute classifiers that read the synthetic world's editing figures and that no
training stage ever uses.

The shipped classifier (:mod:`sg3pipe.synth.classifier`) finds the directions and its family taught the
generator, so its readings of the generator's images measure in part how well the generator learnt to please
it. The panel's readers are trained only on renderer images, each of another architecture than the shipped
classifier and than each other (:data:`READER_KINDS`), with their own seeds, and under degradations that make
renders look like a small generator's images (resampling, blur, noise), so that soft images are read fairly.
Nothing that trains the generator or the encoder may load them (``tests/test_synth_panel.py`` checks the
training code for it). Files are safetensors with the reader's config and its held-out accuracy as JSON
metadata (:func:`save_reader`, :func:`load_reader`); a figure read by the panel is reported as the panel's
minimum and median (:func:`panel_summary`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sg3pipe.io.errors import ModelFileError
from sg3pipe.io.model_files import read_model_file, write_model_file
from sg3pipe.synth.classifier import ClassifierTrainingConfig, degrade, fit_attributes, resample, training_batch
from sg3pipe.synth.renderer import LABELS

FORMAT_NAME = "synth_panel_reader"
FORMAT_VERSION = 1


class ReaderFileError(ModelFileError):
    """A panel reader file cannot be used."""

    kind = "panel reader"
    expected = "an sg3pipe panel reader (.safetensors written by sg3pipe.synth.panel.save_reader)"


def _resized(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """``images [N, 3, H, W]`` resampled to ``[N, 3, resolution, resolution]`` (bilinear, antialiased)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape [N, 3, H, W], got {list(images.shape)}")
    if images.shape[-2:] == (resolution, resolution):
        return images
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)


class _ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.body(x) + self.skip(x))


class ResidualReader(nn.Module):
    """A small ResNet: a 5x5 stem and a residual block at full resolution (the attributes are a few pixels wide
    at 64 px), three residual blocks of stride 2 (batch norm, SiLU), then attention pooling per attribute: each
    attribute weighs the last feature map's positions by its own softmax map and reads the weighted features
    linearly.

    Images ``[N, 3, H, W]`` in [-1, 1] (resampled to ``resolution``) -> logits ``[N, len(names)]``.
    """

    def __init__(self, names: list[str], resolution: int = 64, width: int = 24):
        super().__init__()
        self.names, self.resolution = list(names), resolution
        self.stem = nn.Sequential(nn.Conv2d(3, width, 5, 1, 2, bias=False), nn.BatchNorm2d(width), nn.SiLU())
        widths = (width, 2 * width, 4 * width, 8 * width)
        self.stages = nn.Sequential(
            _ResidualBlock(width, width, 1),
            *(_ResidualBlock(a, b, 2) for a, b in zip(widths[:-1], widths[1:], strict=True)),
        )
        self.attend = nn.Conv2d(widths[-1], len(self.names), 1)
        self.weight = nn.Parameter(torch.randn(len(self.names), widths[-1]) / widths[-1] ** 0.5)
        self.bias = nn.Parameter(torch.zeros(len(self.names)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(_resized(images, self.resolution)))  # [N, C, h, w]
        attention = self.attend(x).flatten(2).softmax(dim=2)  # [N, K, h * w]
        pooled = torch.einsum("nkp,ncp->nkc", attention, x.flatten(2))  # [N, K, C]
        return (pooled * self.weight).sum(dim=2) + self.bias


class ConvFormerReader(nn.Module):
    """A convolutional stem (one full-resolution convolution, then two of stride 2) down to 16x16 tokens, then
    pre-norm transformer blocks (4 heads, learnt position embeddings), and the tokens' mean and maximum side by
    side (the maximum lets a token that holds an eye or a mouth speak; the mean alone stayed at a loss of 0.49).

    Images ``[N, 3, H, W]`` in [-1, 1] (resampled to ``resolution``) -> logits ``[N, len(names)]``.
    """

    def __init__(self, names: list[str], resolution: int = 64, width: int = 64, depth: int = 3):
        super().__init__()
        self.names, self.resolution = list(names), resolution
        layers: list[nn.Module] = []
        for c_in, c_out, stride in ((3, width // 2, 1), (width // 2, width, 2), (width, width, 2)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.GELU()]
        self.stem = nn.Sequential(*layers)
        tokens = (resolution // 4) ** 2
        self.position = nn.Parameter(torch.randn(1, tokens, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, 4, 2 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(2 * width, len(self.names))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(_resized(images, self.resolution)).flatten(2).transpose(1, 2)  # [N, tokens, width]
        x = self.norm(self.blocks(x + self.position))
        return self.head(torch.cat([x.mean(dim=1), x.amax(dim=1)], dim=1))


class SeparableReader(nn.Module):
    """A MobileNet-like net: depthwise 5x5 and pointwise convolutions (batch norm, hard swish), max pooling
    between four stages, global max pooling.

    Images ``[N, 3, H, W]`` in [-1, 1] (resampled to ``resolution``) -> logits ``[N, len(names)]``.
    """

    def __init__(self, names: list[str], resolution: int = 64, width: int = 32):
        super().__init__()
        self.names, self.resolution = list(names), resolution
        widths = (width, 2 * width, 4 * width, 8 * width)
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.Hardswish()]
        for k, (c_in, c_out) in enumerate(zip(widths, widths[1:] + widths[-1:], strict=True)):
            layers += [
                nn.Conv2d(c_in, c_in, 5, 1, 2, groups=c_in, bias=False),
                nn.BatchNorm2d(c_in),
                nn.Hardswish(),
                nn.Conv2d(c_in, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.Hardswish(),
            ]
            if k < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], len(self.names))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(_resized(images, self.resolution)).amax(dim=(2, 3)))


READER_KINDS = {"residual": ResidualReader, "convformer": ConvFormerReader, "separable": SeparableReader}


@dataclass(frozen=True)
class ReaderConfig:
    """One panel reader: its architecture and how it is trained (renders only)."""

    kind: str  # a key of READER_KINDS
    width: int  # the architecture's base width (channels)
    seed: int
    resolution: int = 64  # input size in pixels; other sizes are resampled to it
    steps: int = 3500
    batch: int = 32
    lr: float = 2e-3  # AdamW, cosine-decayed to lr / 20
    # Degradations of ``degraded_fraction`` of each batch: resampled down to a share of the size uniform in
    # [min_scale, 1] and back up, blurred by a Gaussian of sigma uniform in [0, max_blur_px] pixels, noised by
    # Gaussian noise of std uniform in [0, max_noise].
    degraded_fraction: float = 0.75
    min_scale: float = 0.5
    max_blur_px: float = 1.5
    max_noise: float = 0.08
    checkpoint_every: int = 250


# The shipped panel (models/panel/{name}.safetensors): three architectures, three seeds, none a teacher.
PANEL = {
    "residual": ReaderConfig("residual", width=16, seed=11),
    "convformer": ReaderConfig("convformer", width=48, seed=12, lr=5e-4),  # at 2e-3 it stayed at a loss of 0.5
    "separable": ReaderConfig("separable", width=16, seed=13),
}


def make_reader(cfg: ReaderConfig, names: list[str] | None = None) -> nn.Module:
    """A fresh reader of ``cfg`` with outputs ``names`` (default: the renderer's ``LABELS``)."""
    if cfg.kind not in READER_KINDS:
        raise ValueError(f"unknown reader kind {cfg.kind!r}; known: {sorted(READER_KINDS)}")
    return READER_KINDS[cfg.kind](list(names or LABELS), cfg.resolution, cfg.width)


def reader_batch(n: int, rng: torch.Generator, cfg: ReaderConfig, strength: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` renders under the shipped classifier's random similarities (ranges times ``strength``), a share of
    them degraded as ``cfg`` says: images ``[n, 3, R, R]`` in [-1, 1] and labels ``[n, 6]`` float 0/1."""
    images, labels = training_batch(n, rng, ClassifierTrainingConfig(resolution=cfg.resolution), strength)
    u = torch.rand(n, 4, generator=rng)
    chosen = u[:, 0] < cfg.degraded_fraction
    scale = torch.where(chosen, cfg.min_scale + (1 - cfg.min_scale) * u[:, 1], torch.ones(n))
    blur = torch.where(chosen, u[:, 2] * cfg.max_blur_px, torch.zeros(n))
    noise = torch.where(chosen, u[:, 3] * cfg.max_noise, torch.zeros(n))
    return degrade(resample(images, scale), blur, noise, rng).clamp(-1.5, 1.5), labels


def train_reader(out_dir: str | os.PathLike, cfg: ReaderConfig, device: str | torch.device = "cpu") -> nn.Module:
    """Train (or resume) one reader on fresh renders every step (binary cross-entropy per attribute); the
    transforms grow from none to the full ranges over the first 40% of the steps. Checkpoints
    ``out_dir/checkpoint.pt`` every ``cfg.checkpoint_every`` steps and resumes from it when the config matches
    (:func:`sg3pipe.synth.classifier.fit_attributes`). Returns the reader in eval mode."""
    torch.manual_seed(cfg.seed)
    net = make_reader(cfg).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)

    def next_batch(step: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return reader_batch(cfg.batch, rng, cfg, min(1.0, step / max(0.4 * cfg.steps, 1)))

    return fit_attributes(out_dir, net, optimizer, "reader", cfg, next_batch, device, f"{cfg.kind} ")


def save_reader(net: nn.Module, cfg: ReaderConfig, path: str | os.PathLike, extra: Mapping | None = None) -> Path:
    """Write ``net`` (made by :func:`make_reader` from ``cfg``) with ``cfg`` and its names as the config, and
    ``extra`` (e.g. its held-out accuracy)."""
    config = {**asdict(cfg), "names": list(net.names)}
    return write_model_file(path, FORMAT_NAME, FORMAT_VERSION, config, net.state_dict(), extra=extra)


def load_reader(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A reader file written by :func:`save_reader`, in eval mode, with ``.names`` and ``.source``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ReaderFileError: the file is not a panel reader or its weights do not fit its config.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"panel reader {path} does not exist; build it with `snakemake --cores 2 synth_panel`")
    header, state_dict = read_model_file(path, FORMAT_NAME, FORMAT_VERSION, ReaderFileError, ReaderFileError.expected)
    config = dict(header["config"])
    names = config.pop("names")
    net = make_reader(ReaderConfig(**config), names)
    try:
        net.load_state_dict(state_dict)
    except RuntimeError as err:
        raise ReaderFileError(path, f"holds weights that do not fit its config ({str(err).splitlines()[0]})") from None
    net.source = {"path": str(path), "format": FORMAT_NAME}
    return net.to(device).eval()


def panel_paths(folder: str | os.PathLike = "models/panel") -> dict[str, Path]:
    """Reader name -> its file in ``folder`` (``{name}.safetensors``), for every reader of :data:`PANEL`."""
    return {name: Path(folder) / f"{name}.safetensors" for name in PANEL}


def load_panel(paths: Mapping[str, str | os.PathLike], device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    """Reader name -> :func:`load_reader` of each path (e.g. :func:`panel_paths`)."""
    return {name: load_reader(path, device) for name, path in paths.items()}


def panel_summary(readings: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """The panel's minimum and median of a figure per attribute: ``readings`` reader -> attribute -> value
    gives ``{"min": attribute -> value, "median": attribute -> value}`` over the readers."""
    names = list(next(iter(readings.values())))
    values = np.array([[float(readings[reader][name]) for name in names] for reader in readings])  # [R, K]
    return {
        "min": dict(zip(names, values.min(axis=0).tolist(), strict=True)),
        "median": dict(zip(names, np.median(values, axis=0).tolist(), strict=True)),
    }
