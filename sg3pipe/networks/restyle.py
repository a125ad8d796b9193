"""ReStyle iterative inversion (encoder + generator + average latent), and loading and saving of encoder files.

ReStyle (Alaluf et al. 2021) inverts an aligned image ``x`` in a few encoder passes::

    w_0 = latent_avg,  y_0 = G(latent_avg)                  (the average image)
    w_{t+1} = w_t + E(cat(pool(x), pool(y_t))),  y_{t+1} = G(w_{t+1})

with ``pool`` the average pooling to the encoder's input size (256 for the official encoders). The whole batch
goes through each pass at once (the official video code runs one frame at a time).

Files (told apart by their first bytes, not their extension):

* ``editing-pt``: the official ``restyle_pSp_ffhq.pt`` / ``restyle_e4e_ffhq.pt`` checkpoints, a torch pickle
  ``{"state_dict": {"encoder.*", "decoder.*"}, "opts": {...}, "latent_avg": [w_dim]}``; read with
  ``torch.load(weights_only=True)`` and only the path classes of ``opts`` allowed, so no code in the file runs;
* ``sg3pipe``: one safetensors file, the :class:`ReStyleEncoder` state dict with the encoder and generator
  configs as JSON in its metadata (:func:`save_encoder`).

Every unusable file raises one :class:`EncoderFileError` naming the file, the problem and what was expected.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import zipfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sg3pipe.io import official_pickle
from sg3pipe.io.errors import ModelFileError
from sg3pipe.io.model_files import read_model_file, read_model_header, write_model_file
from sg3pipe.networks import loading
from sg3pipe.networks.encoders import OFFICIAL_ENCODER_TYPES, BackboneEncoder, infer_encoder_config
from sg3pipe.networks.loading import GeneratorFileError, infer_config
from sg3pipe.networks.stylegan3 import Generator, _assert_shape
from sg3pipe.provenance import file_sha256

EXPECTED = (
    "a ReStyle encoder checkpoint of the stylegan3-editing repo (restyle_pSp_ffhq.pt / restyle_e4e_ffhq.pt: "
    "'state_dict' with encoder.* and decoder.* weights, 'opts', 'latent_avg') or an sg3pipe encoder "
    "(.safetensors written by save_encoder)"
)
FORMAT_NAME = "encoder"
FORMAT_VERSION = 1  # bump when the meaning of the stored config or tensors changes
SG3PIPE_EXPECTED = "an sg3pipe encoder written by save_encoder"

# The only globals an official checkpoint may name besides tensors: the path objects in its `opts`. They are
# rebuilt as pure paths (no file-system access, and a Windows path loads on Linux and back).
_PATH_GLOBALS = [
    (pathlib.PurePosixPath, "pathlib.PosixPath"),
    (pathlib.PureWindowsPath, "pathlib.WindowsPath"),
    (pathlib.PurePosixPath, "pathlib._local.PosixPath"),  # Python >= 3.13 pickles the class under this name
    (pathlib.PureWindowsPath, "pathlib._local.WindowsPath"),
    pathlib.PurePosixPath,
    pathlib.PureWindowsPath,
    argparse.Namespace,  # restyle-encoder's opts
]
OFFICIAL_REFUSAL = (
    "an encoder checkpoint has no need of (only tensors, plain values and the path objects of 'opts' are allowed)"
)


class EncoderFileError(ModelFileError):
    """An encoder file cannot be used: empty, truncated, of another type, or its weights do not fit."""

    kind = "encoder"
    expected = EXPECTED


class ReStyleEncoder(nn.Module):
    """An encoder, the generator it was trained against and the average latent it starts from.

    ``enc(x)`` is one encoder pass (:meth:`BackboneEncoder.forward`); :meth:`invert` runs the iterations.
    State-dict names: ``encoder.*``, ``decoder.*`` (as in the official checkpoints) and ``latent_avg``.
    """

    def __init__(
        self,
        encoder: BackboneEncoder,  # The ReStyle encoder E.
        decoder: Generator,  # The generator G that E inverts.
        latent_avg: torch.Tensor,  # Starting latent w_0, [w_dim] or [num_ws, w_dim].
    ):
        super().__init__()
        if encoder.n_styles != decoder.num_ws or encoder.w_dim != decoder.w_dim:
            raise ValueError(
                f"encoder predicts [{encoder.n_styles}, {encoder.w_dim}] but the generator takes "
                f"[{decoder.num_ws}, {decoder.w_dim}]"
            )
        if encoder.input_nc != 2 * decoder.img_channels:
            raise ValueError(
                f"a ReStyle encoder takes image + reconstruction ({2 * decoder.img_channels} channels), "
                f"this one {encoder.input_nc}"
            )
        if list(latent_avg.shape) not in ([decoder.w_dim], [decoder.num_ws, decoder.w_dim]):
            raise ValueError(
                f"latent_avg: expected shape [{decoder.w_dim}] or [{decoder.num_ws}, {decoder.w_dim}], "
                f"got {list(latent_avg.shape)}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("latent_avg", latent_avg.to(torch.float32).expand(decoder.num_ws, -1).clone())
        self.source: dict | None = None  # {"path", "sha256", "format"} when loaded from a file

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One encoder pass: ``x [N, 6, S, S]`` (image, reconstruction; S = ``encoder.input_size``) -> the
        latent update ``[N, num_ws, w_dim]``."""
        return self.encoder(x)

    def pool(self, images: torch.Tensor) -> torch.Tensor:
        """Average-pool ``[N, C, H, W]`` to the encoder's input size (the official ``face_pool``)."""
        return F.adaptive_avg_pool2d(images, self.encoder.input_size)

    def average_image(self) -> torch.Tensor:
        """ReStyle's starting reconstruction: the render of ``latent_avg``, pooled, ``[1, 3, S, S]``."""
        with torch.no_grad():
            return self.pool(self.decoder.synthesis(self.latent_avg[None]))

    def passes(
        self,
        images: torch.Tensor,
        n_iters: int,
        grad_encoder: bool = False,
        grad_render: bool = False,
        transform: torch.Tensor | None = None,
        average: torch.Tensor | None = None,
    ):
        """The ReStyle passes of one batch, one at a time (what :meth:`invert` and encoder training both run).

        Starts from ``latent_avg`` and ``average`` (:meth:`average_image` when ``None``); pass t adds the
        encoder's output for (image, previous reconstruction) to the latent and renders it. Yields
        ``(w_t [N, num_ws, w_dim], y_t [N, 3, R, R])`` for t = 1..n_iters; the last render uses ``transform``
        (``None``, ``[3, 3]`` or ``[N, 3, 3]``, as ``G.synthesis`` takes it).
        ``grad_encoder``: each ``w_t`` carries the gradient of that pass only (the previous latent and
        reconstruction are detached, as in ReStyle's training); ``grad_render``: so does ``y_t`` (through the
        generator, the costly part; without it ``y_t`` is rendered without gradient).
        """
        x = self.pool(images)
        ws = self.latent_avg.expand(len(images), -1, -1)
        y = (self.average_image() if average is None else average).expand(len(images), -1, -1, -1)
        for t in range(n_iters):
            with torch.set_grad_enabled(grad_encoder):
                ws = ws.detach() + self.encoder(torch.cat([x, y.detach()], dim=1))
            last = t == n_iters - 1
            with torch.set_grad_enabled(grad_render):
                out = self.decoder.synthesis(ws if grad_render else ws.detach(), transform=transform if last else None)
            yield ws, out
            if not last:
                y = self.pool(out)

    @torch.no_grad()
    def invert(
        self,
        images: torch.Tensor,
        n_iters: int = 3,
        transforms: torch.Tensor | None = None,
        batch_size: int = 16,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Invert aligned images with ``n_iters`` ReStyle passes, ``batch_size`` images per pass.

        Args:
            images: ``[N, 3, H, W]`` in [-1, 1], aligned crops (any size; pooled to ``encoder.input_size``).
            n_iters: encoder passes; 0 returns ``latent_avg`` and the average image.
            transforms: ``None``, ``[3, 3]`` or ``[N, 3, 3]`` with the meaning of ``G.synthesis``'s ``transform``
                (sg3pipe.transforms); used only to render the returned reconstructions, as the official code does.
            batch_size: images per encoder/generator pass (bounds memory; results do not depend on it).

        Returns:
            ``(latents [N, num_ws, w_dim], reconstructions [N, 3, img_resolution, img_resolution])`` float32 on
            ``images``' device. The work runs on the module's device (GPU when the module is on one).
        """
        _assert_shape(images, [None, self.decoder.img_channels, None, None], "images")
        if n_iters < 0 or batch_size < 1:
            raise ValueError(f"n_iters {n_iters} must be >= 0 and batch_size {batch_size} >= 1")
        if transforms is not None:
            transforms = torch.as_tensor(transforms, dtype=torch.float32)
            if transforms.shape not in ((3, 3), (images.shape[0], 3, 3)):
                raise ValueError(
                    f"transforms: expected shape [3, 3] or [{images.shape[0]}, 3, 3] (one per image), "
                    f"got {list(transforms.shape)}"
                )
        device = self.latent_avg.device
        if images.shape[0] == 0:
            size = self.decoder.img_resolution
            return images.new_zeros([0, *self.latent_avg.shape]), images.new_zeros([0, images.shape[1], size, size])
        average = self.average_image()
        latents, reconstructions = [], []
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device, torch.float32)
            chunk = transforms if transforms is None or transforms.ndim == 2 else transforms[start : start + len(batch)]
            last = deque(self.passes(batch, n_iters, transform=chunk, average=average), maxlen=1)
            if last:
                ws, out = last[0]
            else:  # n_iters == 0: the average latent, rendered with the transform
                ws = self.latent_avg.expand(len(batch), -1, -1)
                out = self.decoder.synthesis(ws, transform=chunk)
            reconstructions.append(out.to(images.device))
            latents.append(ws.to(images.device))
        return torch.cat(latents), torch.cat(reconstructions)


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> ReStyleEncoder:
    """Load a ReStyle encoder from an official ``.pt`` checkpoint or an sg3pipe ``.safetensors`` file.

    Returns:
        The :class:`ReStyleEncoder` on ``device`` in eval mode, with ``enc.source = {"path", "sha256",
        "format"}``; ``format`` is ``"editing-pt"`` or ``"sg3pipe"``.

    Raises:
        FileNotFoundError: no file at ``path``.
        EncoderFileError: the file is empty, truncated, not an encoder, or its weights do not fit.
    """
    path, fmt = _encoder_file(path)
    readers = {"editing-pt": _read_official, "sg3pipe": _read_sg3pipe}
    enc = readers[fmt](path)
    enc.source = {"path": str(path), "sha256": file_sha256(path), "format": fmt}
    return enc.to(device).eval()


def read_decoder_config(path: str | os.PathLike) -> dict:
    """The constructor arguments of the generator an encoder file inverts into (its decoder: ``img_resolution``,
    ``w_dim``, ...), without loading any weights (metadata, or memory-mapped shapes). Raises as
    :func:`load_encoder` for a file that is not an encoder."""
    path, fmt = _encoder_file(path)
    if fmt == "sg3pipe":
        return _read_sg3pipe_metadata(path)["decoder"]
    ckpt = official_pickle.load_torch_file(
        path, EncoderFileError, OFFICIAL_REFUSAL, _PATH_GLOBALS, mmap=zipfile.is_zipfile(path)
    )
    state_dict = ckpt.get("state_dict") if isinstance(ckpt, Mapping) else None
    decoder_sd = _strip(state_dict, "decoder.") if isinstance(state_dict, Mapping) else {}
    try:
        return infer_config(decoder_sd)
    except (ValueError, KeyError) as err:
        raise EncoderFileError(path, f"has no StyleGAN3 decoder.* weights in its 'state_dict' ({err})") from None


def _encoder_file(path: str | os.PathLike) -> tuple[Path, str]:
    """``(path, format)`` of an existing encoder file; ``format`` is ``"editing-pt"`` or ``"sg3pipe"``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"encoder file {path} does not exist; point the config's encoder path at {EXPECTED}")
    if not path.is_file():
        raise EncoderFileError(path, "is a directory, not a file")
    try:
        fmt, _ = loading.sniff_format(path)
    except GeneratorFileError as err:
        raise EncoderFileError(path, err.problem) from None
    if fmt == "nvidia-pkl":
        raise EncoderFileError(path, "is a pickle (an NVIDIA network pickle holds a generator, not an encoder)")
    return path, fmt


def save_encoder(enc: ReStyleEncoder, path: str | os.PathLike) -> Path:
    """Write ``enc`` in sg3pipe's format (:mod:`sg3pipe.io.model_files`): its ``state_dict()``, the encoder and
    generator constructor arguments as the config and, when ``enc`` was loaded from a file, that file's
    ``enc.source``. Written atomically; returns the path."""
    config = {"encoder": enc.encoder.init_kwargs, "decoder": enc.decoder.init_kwargs}
    return write_model_file(path, FORMAT_NAME, FORMAT_VERSION, config, enc.state_dict(), source=enc.source)


def _read_official(path: Path) -> ReStyleEncoder:
    ckpt = official_pickle.load_torch_file(path, EncoderFileError, OFFICIAL_REFUSAL, _PATH_GLOBALS)

    if loading._unwrap_state_dict(ckpt) is not None:
        raise EncoderFileError(path, "is a generator state dict (mapping.*, synthesis.*), not an encoder checkpoint")
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise EncoderFileError(path, f"is a torch file holding {loading._describe_object(ckpt)}, with no 'state_dict'")
    state_dict = ckpt["state_dict"]
    encoder_sd = _strip(state_dict, "encoder.")
    decoder_sd = _strip(state_dict, "decoder.")
    if not encoder_sd:
        raise EncoderFileError(path, "has a 'state_dict' without encoder.* weights")
    if not decoder_sd:
        raise EncoderFileError(path, "has a 'state_dict' without decoder.* (generator) weights")

    opts = ckpt.get("opts")
    opts = vars(opts) if isinstance(opts, argparse.Namespace) else opts
    encoder_type = opts.get("encoder_type") if isinstance(opts, Mapping) else None
    if encoder_type not in OFFICIAL_ENCODER_TYPES:
        problem = f"has opts.encoder_type {encoder_type!r}" if isinstance(opts, Mapping) else "has no 'opts' dict"
        raise EncoderFileError(path, f"{problem}; it must be one of {sorted(OFFICIAL_ENCODER_TYPES)}")
    latent_avg = ckpt.get("latent_avg")
    if not isinstance(latent_avg, torch.Tensor):
        raise EncoderFileError(path, "has no 'latent_avg' tensor (the latent that inversion starts from)")

    # PTI-style batched transforms in the decoder's buffer mean nothing here (sg3pipe passes transforms).
    decoder_sd = loading._drop_batched_transform(decoder_sd)
    try:
        decoder_config = infer_config(decoder_sd)
    except ValueError as err:
        raise EncoderFileError(path, f"has decoder.* weights that are not a StyleGAN3 generator's: {err}") from None
    decoder = _build_decoder(path, decoder_config, decoder_sd)
    try:
        encoder_config = infer_encoder_config(encoder_sd, encoder_type, decoder.w_dim, decoder.num_ws)
    except ValueError as err:
        raise EncoderFileError(path, f"has encoder.* weights that are not a {encoder_type}'s: {err}") from None
    for key, value in (("input_nc", encoder_config["input_nc"]), ("output_size", decoder.img_resolution)):
        if opts.get(key, value) != value:
            raise EncoderFileError(path, f"says opts.{key} = {opts[key]!r} but its weights have {value}")
    encoder = _build_encoder(path, encoder_config, encoder_sd)
    return _assemble(path, encoder, decoder, latent_avg)


def _strip(state_dict: Mapping, prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: t for key, t in state_dict.items() if str(key).startswith(prefix)}


def _read_sg3pipe(path: Path) -> ReStyleEncoder:
    header, tensors = read_model_file(path, FORMAT_NAME, FORMAT_VERSION, EncoderFileError, SG3PIPE_EXPECTED)
    config = _parts(path, header["config"])
    if "latent_avg" not in tensors:
        raise EncoderFileError(path, "has no 'latent_avg' tensor", SG3PIPE_EXPECTED)
    decoder = _build_decoder(path, config["decoder"], _strip(tensors, "decoder."))
    encoder = _build_encoder(path, config["encoder"], _strip(tensors, "encoder."))
    return _assemble(path, encoder, decoder, tensors["latent_avg"])


def _read_sg3pipe_metadata(path: Path) -> dict:
    header = read_model_header(path, FORMAT_NAME, FORMAT_VERSION, EncoderFileError, SG3PIPE_EXPECTED)
    return _parts(path, header["config"])


def _parts(path: Path, config: object) -> dict:
    """``{"encoder": config, "decoder": config}`` of an sg3pipe encoder file's stored config."""
    if not (isinstance(config, dict) and isinstance(config.get("encoder"), dict) and "decoder" in config):
        raise EncoderFileError(
            path, "has unreadable sg3pipe metadata (no encoder and decoder config)", SG3PIPE_EXPECTED
        )
    return config


def _build_decoder(path: Path, config: dict, state_dict: dict[str, torch.Tensor]) -> Generator:
    try:
        return loading._build(path, config, state_dict)
    except GeneratorFileError as err:
        raise EncoderFileError(path, f"its decoder (generator) {err.problem}") from None


def _build_encoder(path: Path, config: dict, state_dict: dict[str, torch.Tensor]) -> BackboneEncoder:
    """A BackboneEncoder built from ``config`` holding ``state_dict``, or one error saying how they disagree."""
    try:
        # Built on the meta device: no random initialisation of weights that are replaced at once.
        with torch.device("meta"):
            encoder = BackboneEncoder(**config)
    except (TypeError, ValueError) as err:
        raise EncoderFileError(path, f"has an encoder config that cannot be built ({err}): {config}") from None
    state_dict = {key: t.float() if t.is_floating_point() else t for key, t in state_dict.items()}
    mismatch = loading._state_dict_mismatch(encoder.state_dict(), state_dict)
    if mismatch:
        raise EncoderFileError(
            path,
            f"has encoder weights that do not fit a {config['backbone']} encoder {config}: {mismatch}",
            "the tensor names and shapes of that encoder",
        )
    encoder.load_state_dict(state_dict, assign=True)
    return encoder


def _assemble(path: Path, encoder: BackboneEncoder, decoder: Generator, latent_avg: torch.Tensor) -> ReStyleEncoder:
    try:
        return ReStyleEncoder(encoder, decoder, latent_avg)
    except ValueError as err:
        raise EncoderFileError(path, f"has parts that do not fit together: {err}") from None
