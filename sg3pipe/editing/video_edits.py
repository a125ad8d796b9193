"""Apply a configured edit to a video's latents: ``results/{video}/edits/{edit}.parquet``, one row per frame.

The table keeps every row of ``latents.parquet`` (``frame``, ``track``, ``status``, ``inverted``); rows of frames
that were not inverted hold NaN, as their latents do. Edits in W or W+ store ``latent [K, num_ws, w_dim]`` (one
edited W+ per factor); edits in StyleSpace store ``styles [K, C]`` (flat, without the input layer's entry,
which the renderer takes from the unedited ``latent``, also stored). The factors, in the configured and in
raw units, are in the metadata.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from sg3pipe.editing.directions import load_boundary
from sg3pipe.editing.edits import EditSpec, edit_latents, edit_styles, factor_in_raw_units
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.networks.stylespace import flat_styles_of, render_flat_styles
from sg3pipe.pixels import save_png, tile, to_uint8
from sg3pipe.provenance import provenance

log = logging.getLogger(__name__)


def edit_table_path(edits_dir: str | os.PathLike, name: str) -> Path:
    """The table of edit ``name`` in a video's edits folder: ``{edits_dir}/{name}.parquet``, with its strip
    picture beside it as ``{name}.png`` (:func:`write_video_edits`)."""
    return Path(edits_dir) / f"{name}.parquet"


def load_direction(directions_dir: str | os.PathLike, name: str) -> tuple[np.ndarray, dict]:
    """The direction ``name`` of a directions folder and its row of ``directions.parquet``.

    Returns:
        ``(direction, row)``: ``[1, w_dim]`` for a W direction, ``[C]`` for a StyleSpace one.

    Raises:
        ValueError: no direction of that name (the message lists the names there are).
    """
    directions_dir = Path(directions_dir)
    table, _ = read_table(directions_dir / "directions.parquet")
    match = table[table["name"] == name]
    if match.empty:
        raise ValueError(
            f"edit asks for direction {name!r}, which {directions_dir / 'directions.parquet'} does not hold; "
            f"use one of {sorted(table['name'])}"
        )
    row = match.iloc[0].to_dict()
    path = directions_dir / row["file"]
    direction = load_boundary(path) if row["space"] == "w" else np.load(path, allow_pickle=False)
    return direction, row


def edit_video(
    latents_path: str | os.PathLike,
    directions_dir: str | os.PathLike,
    spec: EditSpec,
    out_path: str | os.PathLike,
    G: Generator | None = None,
    provenance: dict | None = None,
    batch: int = 64,
) -> dict:
    """Write the edited latents of one video for every factor of ``spec`` (module docstring).

    Args:
        latents_path: ``latents.parquet`` of the inversion stage.
        directions_dir: the folder of ``directions.parquet`` and its ``.npy`` files.
        G: the generator, needed for StyleSpace edits (its affines turn W+ into styles).

    Returns:
        The table's metadata: factors (configured and raw), direction row, shapes.
    """
    table, meta = read_table(latents_path)
    shape = tuple(meta["shapes"]["latent"])
    ws = column_array(table, "latent", shape)
    direction, row = load_direction(directions_dir, spec.direction)
    expected_space = "s" if spec.space == "s" else "w"
    if row["space"] != expected_space:
        problem = (
            f"edit {spec.name!r} is in space {spec.space!r} but direction {spec.direction!r} is in {row['space']!r}"
        )
        raise ValueError(f"{problem}: point the edit at a direction of its space")
    raw = [factor_in_raw_units(f, spec.unit, row["std"]) for f in spec.factors]
    columns = {name: table[name].to_numpy() for name in ("frame", "track", "status")}
    columns["latent"] = ws
    columns["inverted"] = table["inverted"].to_numpy()
    if spec.space == "s":
        if G is None:
            raise ValueError(f"edit {spec.name!r} is in StyleSpace: it needs the generator")
        styles = flat_styles_of(G, ws, np.flatnonzero(np.isfinite(ws).all(axis=(1, 2))), batch)
        columns["styles"] = np.stack([edit_styles(styles, direction, f) for f in raw], axis=1)
        shapes = {"latent": list(shape), "styles": [len(raw), styles.shape[1]]}
    else:
        columns["latent_edited"] = np.stack([edit_latents(ws, direction, f, spec.rows) for f in raw], axis=1)
        shapes = {"latent": list(shape), "latent_edited": [len(raw), *shape]}
    metadata = {
        "provenance": provenance or {},
        "edit": asdict(spec),
        "factors": list(spec.factors),
        "raw_factors": raw,
        "direction": {k: (v if not isinstance(v, np.generic) else v.item()) for k, v in row.items()},
        "shapes": shapes,
    }
    write_table(out_path, columns, metadata)
    log.info("edit %s: %d frames x %d factors written to %s", spec.name, len(ws), len(raw), out_path)
    return metadata


def edited_images(
    G: Generator, table, metadata: dict, rows: np.ndarray, transform: torch.Tensor | None = None
) -> torch.Tensor:
    """Render the edited frames ``rows`` of an edits table at every factor: ``[len(rows), K, 3, R, R]``."""
    shapes = metadata["shapes"]
    ws = torch.from_numpy(column_array(table, "latent", tuple(shapes["latent"]))[rows])
    device = G.mapping.w_avg.device
    with torch.no_grad():
        if "styles" in shapes:
            k, c = shapes["styles"]
            styles = torch.from_numpy(column_array(table, "styles", (k, c))[rows])
            images = [render_flat_styles(G, ws.to(device), styles[:, i].to(device), transform) for i in range(k)]
        else:
            k = shapes["latent_edited"][0]
            edited = torch.from_numpy(column_array(table, "latent_edited", tuple(shapes["latent_edited"]))[rows])
            images = [G.synthesis(edited[:, i].to(device), transform=transform) for i in range(k)]
    return torch.stack(images, dim=1)


def write_video_edits(
    latents_path: str | os.PathLike,
    directions_dir: str | os.PathLike,
    specs: list[dict],
    out_dir: str | os.PathLike,
    G: Generator,
    generator_path: str | os.PathLike,
    strip_frames: int = 4,
) -> list[Path]:
    """Every configured edit of a video, in ``out_dir``: the table of each (:func:`edit_video`) and a strip
    picture, ``{name}.png``: ``strip_frames`` inverted frames evenly spaced over the video (rows) by the edit's
    factors (columns), aligned, from the generator ``G`` loaded from ``generator_path``.

    Args:
        specs: the config's ``edits`` entries (:class:`EditSpec` fields), in order.

    Returns:
        The tables' paths, in the order of ``specs``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = []
    for spec_config in specs:
        spec = EditSpec(**spec_config)
        table_path = edit_table_path(out_dir, spec.name)
        record = provenance({"edit": spec_config}, {"generator": generator_path})
        metadata = edit_video(latents_path, directions_dir, spec, table_path, G, record)
        table, _ = read_table(table_path)
        inverted = np.flatnonzero(table["inverted"].to_numpy())
        rows = inverted[np.linspace(0, len(inverted) - 1, min(strip_frames, len(inverted))).round().astype(int)]
        images = edited_images(G, table, metadata, rows)  # [frames, factors, 3, R, R]
        save_png(table_path.with_suffix(".png"), tile(to_uint8(images.flatten(0, 1)), images.shape[1]), record)
        tables.append(table_path)
    return tables
