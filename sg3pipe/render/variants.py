"""What each rendered video of a source video shows: its latents, transforms and generator per frame.

A *variant* is one rendering of the whole video (the videos of yuval-alaluf/stylegan3-editing
``inversion/video/generate_videos.py``, plus the PTI stage):

* ``reconstruction``: the encoder's latents with the raw per-frame transforms, on the base generator;
* ``smoothed``: the smoothed latents and transforms (``smoothed.parquet``), on the base generator;
* ``pti``: the same on the video's PTI-tuned generator (the base one when PTI is off);
* ``edit-{name}-{factor}``: every configured edit at every factor, edited first and then smoothed exactly
  as ``smoothed.parquet`` was (the paper's order), on the PTI generator. A StyleSpace edit keeps its
  per-frame offset in S, ``styles(edited) - styles(raw)`` of the base generator, and adds it to the PTI
  generator's styles of the smoothed latents.

Rows of frames that are not usable hold NaN; the renderer passes the source through on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sg3pipe.io.tables import column_array
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.networks.stylespace import flat_styles_of, flatten_styles, render_flat_styles
from sg3pipe.render.names import edit_variant_name
from sg3pipe.temporal import SmoothingSettings, smooth_latents


@dataclass
class Variant:
    """One rendering of a video: ``ws [N, num_ws, w_dim]``, ``transforms [N, 3, 3]`` content-moving matrices,
    which generator draws it (``"base"`` or ``"pti"``) and, for a StyleSpace edit, ``style_offsets [N, C]``
    added to the drawing generator's flat styles of ``ws`` (sg3pipe.editing.directions layout)."""

    name: str
    ws: np.ndarray
    transforms: np.ndarray
    generator: str
    style_offsets: np.ndarray | None = None


def base_variants(latents, latents_meta: dict, frames, smoothed) -> list[Variant]:
    """The ``reconstruction``, ``smoothed`` and ``pti`` variants from the per-video tables (pandas frames of
    ``latents.parquet`` with its metadata, ``frames.parquet`` and ``smoothed.parquet``)."""
    shape = tuple(latents_meta["shapes"]["latent"])
    raw = column_array(latents, "latent", shape)
    smooth_ws = column_array(smoothed, "latent", shape)
    smooth_m = column_array(smoothed, "transform", (3, 3)).astype(np.float64)
    return [
        Variant("reconstruction", raw, column_array(frames, "transform", (3, 3)).astype(np.float64), "base"),
        Variant("smoothed", smooth_ws, smooth_m, "base"),
        Variant("pti", smooth_ws, smooth_m, "pti"),
    ]


def edit_variants(
    name: str,
    table,
    metadata: dict,
    usable: np.ndarray,
    smoothed_ws: np.ndarray,
    transforms: np.ndarray,
    settings: SmoothingSettings,
    G: Generator,
    batch: int = 64,
) -> list[Variant]:
    """``edit-{name}-{factor}`` variants of one edits table (sg3pipe.editing.video_edits), smoothed like
    ``smoothed_ws [N, num_ws, w_dim]`` (each track on its own) with the smoothed ``transforms [N, 3, 3]``
    (module docstring)."""
    shapes = metadata["shapes"]
    factors = metadata["factors"]
    if "latent_edited" in shapes:
        edited = column_array(table, "latent_edited", tuple(shapes["latent_edited"]))  # [N, K, num_ws, w_dim]
        smoothed = smooth_latents(edited, usable, settings, table["track"].to_numpy())
        return [Variant(edit_variant_name(name, f), smoothed[:, k], transforms, "pti") for k, f in enumerate(factors)]
    raw_ws = column_array(table, "latent", tuple(shapes["latent"]))
    edited = column_array(table, "styles", tuple(shapes["styles"]))  # [N, K, C]
    offsets = edited - flat_styles_of(G, raw_ws, np.flatnonzero(usable), batch)[:, None]
    return [
        Variant(edit_variant_name(name, f), smoothed_ws, transforms, "pti", style_offsets=offsets[:, k])
        for k, f in enumerate(factors)
    ]


def render_images(G: Generator, variant: Variant, rows: np.ndarray, with_transform: bool = True) -> torch.Tensor:
    """Images ``[len(rows), 3, R, R]`` of a variant's frames ``rows`` (all usable), with their transforms or,
    ``with_transform=False``, aligned."""
    device = G.mapping.w_avg.device
    ws = torch.from_numpy(variant.ws[rows]).to(device)
    transform = None
    if with_transform:
        transform = torch.linalg.inv(torch.from_numpy(variant.transforms[rows])).float().to(device)
    if variant.style_offsets is None:
        return G.synthesis(ws, transform=transform)
    styles = flatten_styles(G.synthesis.styles(ws))[0] + variant.style_offsets[rows]
    return render_flat_styles(G, ws, torch.from_numpy(styles).to(device), transform)
