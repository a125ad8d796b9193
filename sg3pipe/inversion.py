"""The per-video inversion stage: every usable aligned frame -> a W+ latent, with reconstruction metrics.

:func:`invert_video` reads ``frames.parquet`` and ``aligned.mkv`` of the frames stage and writes
``latents.parquet``, one row per row of the frames table, in order (:data:`COLUMNS`):

* ``frame``, ``track``, ``status``: copied from the frames table;
* ``inverted``: whether the frame was inverted (its status is in ``sg3pipe.frames.USABLE``). Frames that were
  not keep their row with a NaN latent and null metrics, so nothing downstream can mistake them for a face;
* ``latent``: W+ ``[num_ws, w_dim]`` float32, stored flattened (shape in the metadata under ``shapes``);
* ``l2``: mean squared error of the aligned reconstruction ``G.synthesis(w)`` against the aligned crop, over
  pixels and channels in [-1, 1] units (so 4 is the largest possible);
* ``lpips``: LPIPS of the same pair, when ``encode.lpips_weights`` names the backbone weights; else null and the
  metadata's ``lpips`` entry says why;
* ``identity``: cosine similarity of dlib's face descriptors of the same pair (sg3pipe.metrics.identity), with
  ``encode.identity`` (about 0.1 s per image on one CPU core: two per frame); else null;
* ``crop_l2``: with ``encode.render_with_transform``, the MSE of the frame's render with its crop transform,
  ``G.synthesis(w, transform=inverse(M))``, against the unaligned crop of ``crops.mkv``; else null.

Metrics always compare the aligned reconstruction with the aligned crop; the transformed render is compared
with the unaligned crop only (the official video code renders the last iteration with the transform).

Methods (``encode.method``): ``encoder``, a ReStyle encoder (sg3pipe.networks.restyle, ``encode.n_iters``
passes); ``projector``, optimisation against the generator alone (sg3pipe.projector).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch
from tqdm import tqdm

from sg3pipe.devices import pick_device
from sg3pipe.frames import STATUSES, USABLE
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.metrics.identity import IdentityModel
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.pixels import to_tensor, to_uint8
from sg3pipe.projector import ProjectorSettings, project, reconstruction_loss
from sg3pipe.provenance import provenance
from sg3pipe.settings import settings
from sg3pipe.video.decode import read_frames

log = logging.getLogger(__name__)

METHODS = ("encoder", "projector")
METRICS = ("l2", "lpips", "identity", "crop_l2")
COLUMNS = ("frame", "track", "status", "inverted", "latent", *METRICS)

# (images [B, 3, R, R] in [-1, 1] on the model's device) -> (latents [B, num_ws, w_dim], aligned renders).
Inverter = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class EncodeSettings:
    """Config ``encode`` (defaults as in config/schemas/config.schema.yaml)."""

    method: str = "encoder"  # encoder | projector
    batch_size: int = 8  # frames inverted at once
    n_iters: int = 3  # ReStyle encoder passes
    render_with_transform: bool = False  # also render each frame with its crop transform (column crop_l2)
    lpips_weights: str | None = None  # torchvision backbone weights for LPIPS; None: no LPIPS
    lpips_net: str = "alex"  # LPIPS backbone: alex | vgg
    identity: bool = True  # compute the identity metric (dlib, CPU)
    projector: ProjectorSettings = field(default_factory=ProjectorSettings)


def encode_settings(config: dict | None) -> EncodeSettings:
    """:class:`EncodeSettings` from the config's ``encode`` section, failing on unknown keys."""
    config = dict(config or {})
    projector = settings(ProjectorSettings, config.pop("projector", None))
    encode = settings(EncodeSettings, config)
    if encode.method not in METHODS:
        raise ValueError(f"encode.method must be one of {METHODS}, got {encode.method!r}")
    return dataclasses.replace(encode, projector=projector)


def make_inverter(
    encode: EncodeSettings, model_file: str | os.PathLike, device: torch.device, lpips: torch.nn.Module | None
) -> tuple[Inverter, Generator]:
    """The inversion function of ``encode.method`` and its generator, from the model file (an encoder file for
    ``encoder``, a generator file for ``projector``) loaded on ``device``."""
    if encode.method == "encoder":
        from sg3pipe.networks.restyle import load_encoder

        enc = load_encoder(model_file, device=device)
        return lambda x: enc.invert(x, n_iters=encode.n_iters, batch_size=encode.batch_size), enc.decoder

    from sg3pipe.networks.loading import load_generator

    G = load_generator(model_file, device=device).requires_grad_(False)

    def projected(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ws = project(G, x, encode.projector, lpips, batch_size=encode.batch_size)
        with torch.no_grad():
            return ws, G.synthesis(ws)

    return projected, G


def invert_video(
    frames_table: str | os.PathLike,
    aligned_video: str | os.PathLike,
    out_table: str | os.PathLike,
    config: dict,
    model_file: str | os.PathLike,
    crops_video: str | os.PathLike | None = None,
) -> None:
    """Run the inversion stage on one video (module docstring).

    Args:
        frames_table, aligned_video: ``frames.parquet`` and ``aligned.mkv`` of the frames stage.
        out_table: ``latents.parquet`` to write (atomically).
        config: the workflow config; reads its sections ``encode`` and ``device``.
        model_file: the encoder file (``encode.method: encoder``) or the generator file (``projector``).
        crops_video: ``crops.mkv`` of the frames stage; needed with ``encode.render_with_transform``.

    Raises:
        ValueError: the settings are invalid, the aligned crops' size is not the generator's, or the aligned
            video and the frames table disagree on the number of frames.
    """
    encode = encode_settings(config.get("encode"))
    if encode.render_with_transform and crops_video is None:
        raise ValueError("encode.render_with_transform needs the unaligned crops video (crops.mkv)")
    device = pick_device(config.get("device", "auto"))
    lpips = _lpips_model(encode, device)
    invert, G = make_inverter(encode, model_file, device, lpips)
    table, _ = read_table(frames_table)
    status = table["status"].to_numpy().astype(str)
    transforms = torch.from_numpy(column_array(table, "transform", (3, 3)).astype(np.float64))
    n = len(table)
    log.info("inverting %d frames of %s with %s (%s) on %s", n, aligned_video, model_file, encode.method, device)

    identity = IdentityModel(workers=torch.get_num_threads()) if encode.identity else None  # dlib: one core each
    latents = np.full((n, G.num_ws, G.w_dim), np.nan, dtype=np.float32)
    metrics = {name: np.full(n, np.nan) for name in METRICS}  # NaN: not computed (stored as null)
    done = 0
    batches = _frame_batches(aligned_video, crops_video, encode.batch_size, G.img_resolution)
    video = os.path.basename(os.path.dirname(aligned_video))
    with tqdm(total=n, desc=f"invert {video}", unit="frame", mininterval=5) as bar:
        for aligned, crops in batches:
            rows = np.arange(done, done + len(aligned))
            done += len(aligned)
            if done > n:
                raise ValueError(f"{aligned_video} holds more frames than the {n} rows of {frames_table}; rebuild both")
            use = np.isin(status[rows], USABLE)
            if use.any():
                crops = None if crops is None else crops[use]
                ws, values = _invert_batch(invert, G, aligned[use], crops, transforms[rows[use]], identity, lpips)
                latents[rows[use]] = ws
                for metric, v in values.items():
                    metrics[metric][rows[use]] = v
            bar.update(len(aligned))
    if identity is not None:
        identity.close()  # its worker processes
    if done < n:
        raise ValueError(f"{aligned_video} holds {done} frames but {frames_table} has {n} rows; rebuild both")

    inverted = np.isin(status, USABLE)
    lpips_note = _lpips_note(encode)
    log.info("inverted %d of %d frames; mean l2 %.4f", inverted.sum(), n, np.nanmean(metrics["l2"]))
    columns = {
        "frame": table["frame"].to_numpy(),
        "track": table["track"].to_numpy(),
        "status": status,
        "inverted": inverted,
        "latent": latents,
        **{name: pa.array(values, type=pa.float32(), from_pandas=True) for name, values in metrics.items()},
    }
    models = {"encoder" if encode.method == "encoder" else "generator": model_file}
    if identity is not None:
        models["identity"] = identity.model_path
    if encode.lpips_weights:
        models["lpips_backbone"] = encode.lpips_weights
    meta = {
        "provenance": provenance({"encode": dataclasses.asdict(encode), "device": str(device)}, models),
        "shapes": {"latent": [G.num_ws, G.w_dim]},
        "method": encode.method,
        "lpips": lpips_note,
        "status_counts": {s: int((status == s).sum()) for s in STATUSES},
        "inputs": {"frames": str(frames_table), "aligned": str(aligned_video), "crops": str(crops_video)},
        "metrics": "aligned reconstruction vs aligned crop: l2 (MSE, [-1, 1] units), lpips, identity (dlib cosine); "
        "crop_l2: render with inverse(transform) vs unaligned crop",
    }
    write_table(out_table, columns, meta)


def _frame_batches(
    aligned_video: str | os.PathLike, crops_video: str | os.PathLike | None, batch_size: int, resolution: int
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Batches ``([B, R, R, 3], [B, R, R, 3] or None)`` uint8 of the aligned (and unaligned) crops, checked to
    be ``resolution`` pixels square."""
    aligned = read_frames(aligned_video, batch_size=batch_size)
    crops = read_frames(crops_video, batch_size=batch_size) if crops_video is not None else None
    for batch in aligned:
        if batch.images.shape[1:3] != (resolution, resolution):
            raise ValueError(
                f"{aligned_video}: aligned crops are {batch.images.shape[2]}x{batch.images.shape[1]} px but the "
                f"generator renders {resolution}x{resolution}; set align.size: {resolution} and rebuild the frames"
            )
        yield batch.images, None if crops is None else next(crops).images


def _invert_batch(
    invert: Inverter,
    G: Generator,
    aligned: np.ndarray,
    crops: np.ndarray | None,
    transforms: torch.Tensor,
    identity: IdentityModel | None,
    lpips: torch.nn.Module | None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Invert usable aligned crops ``[B, R, R, 3]`` uint8 and score the reconstructions.

    Returns:
        ``(latents [B, num_ws, w_dim] float32, metric name -> [B])``; ``crop_l2`` only when ``crops`` (the
        unaligned crops ``[B, R, R, 3]``) are given, rendered with ``inverse(transforms [B, 3, 3])``.
    """
    device = G.mapping.w_avg.device
    target = to_tensor(aligned).to(device)
    ws, renders = invert(target)
    values = _metrics(renders, target, aligned, identity, lpips)
    if crops is not None:
        with torch.no_grad():
            moved = G.synthesis(ws, transform=torch.linalg.inv(transforms).float().to(device))
        values["crop_l2"] = _mse(moved, to_tensor(crops).to(device))
    return ws.cpu().numpy(), values


def _metrics(
    renders: torch.Tensor,
    target: torch.Tensor,
    target_uint8: np.ndarray,
    identity: IdentityModel | None,
    lpips: torch.nn.Module | None,
) -> dict[str, np.ndarray]:
    """Per-frame ``l2`` and, with their models, ``identity`` and ``lpips`` of renders vs targets ``[B, 3, R, R]``."""
    values = {"l2": _mse(renders, target)}
    if identity is not None:
        values["identity"] = identity.similarity(to_uint8(renders), target_uint8)
    if lpips is not None:
        with torch.no_grad():
            values["lpips"] = lpips(renders, target).reshape(len(renders)).cpu().numpy()
    return values


def _mse(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-image mean squared error of ``[B, C, H, W]`` batches -> ``[B]``."""
    with torch.no_grad():
        return reconstruction_loss(a, b).cpu().numpy()


def _lpips_model(encode: EncodeSettings, device: torch.device) -> torch.nn.Module | None:
    if not encode.lpips_weights:
        return None
    from sg3pipe.metrics.lpips_loader import load_lpips

    return load_lpips(encode.lpips_weights, encode.lpips_net, device)


def _lpips_note(encode: EncodeSettings) -> str:
    if encode.lpips_weights:
        return f"LPIPS-{encode.lpips_net} with backbone weights {encode.lpips_weights}"
    return (
        "not computed: encode.lpips_weights is not set (LPIPS needs torchvision's ImageNet backbone weights, "
        "which are never downloaded; see sg3pipe.metrics.lpips_loader)"
    )
