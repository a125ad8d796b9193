"""Sample a generator for direction finding: latents, StyleSpace codes and attribute scores, in resumable chunks.

Sample ``i`` is ``z_i ~ N(0, I)`` drawn from its own seed ``seed + i`` (so a sample does not depend on the
chunk size or on the other samples), mapped with the configured truncation, rendered at the identity
transform and scored. For an unaligned generator (StyleGAN3 trained on unaligned faces) the render is
pseudo-aligned as in the editing repo: the input layer's row ``w[:, 0]`` is replaced by ``w_avg``.

Chunks of ``chunk`` samples are written one Parquet file each into a working folder, atomically, with their
settings in the metadata; a rerun after an interruption keeps the finished chunks (when their settings match)
and renders only the rest. :func:`join_chunks` joins them into one table.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.networks.stylespace import flatten_styles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingSettings:
    """What a set of samples is made with (stored in every chunk; a chunk made otherwise is redone)."""

    n: int = 4000  # samples in all
    seed: int = 0  # sample i uses seed + i
    truncation_psi: float = 0.7  # the official protocol's truncation
    pseudo_align: bool = True  # render with w[:, 0] = w_avg (for generators trained on unaligned faces)
    chunk: int = 500  # samples per chunk file
    batch: int = 32  # images rendered and scored at once


def sample_z(seeds: np.ndarray, z_dim: int) -> torch.Tensor:
    """``[len(seeds), z_dim]`` standard-normal latents, row ``k`` from ``torch.Generator`` seeded ``seeds[k]``."""
    rows = [torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(rows) if rows else torch.empty(0, z_dim)


def pseudo_aligned(G: Generator, ws: torch.Tensor, pseudo_align: bool = True) -> torch.Tensor:
    """``ws [N, num_ws, w_dim]`` with the input layer's row set to ``w_avg`` (a copy), or ``ws`` itself if not asked."""
    if not pseudo_align:
        return ws
    ws = ws.clone()
    ws[:, 0] = G.mapping.w_avg
    return ws


def render_for_scoring(G: Generator, ws: torch.Tensor, pseudo_align: bool) -> torch.Tensor:
    """Images ``[N, 3, R, R]`` of ``ws`` at the identity transform, pseudo-aligned (``w[:, 0] = w_avg``) if asked."""
    return G.synthesis(pseudo_aligned(G, ws, pseudo_align))


@torch.no_grad()
def sample_chunk(
    G: Generator, scorer, start: int, count: int, settings: SamplingSettings, progress: tqdm | None = None
) -> dict:
    """Columns of samples ``start .. start + count``: ``sample``, ``z [z_dim]``, ``w [w_dim]`` (row 0 of the
    mapped latents; every row is equal), ``s [C]`` (StyleSpace, :func:`flatten_styles`) and one ``score_{name}`` per
    attribute of ``scorer`` (a callable ``images -> [N, K]`` scores with ``names``). ``progress`` (a tqdm bar)
    advances by each batch's samples."""
    device = G.mapping.w_avg.device
    seeds = settings.seed + np.arange(start, start + count)
    z = sample_z(seeds, G.z_dim)
    w_rows, s_rows, score_rows = [], [], []
    for b in range(0, count, settings.batch):
        ws = G.mapping(z[b : b + settings.batch].to(device), truncation_psi=settings.truncation_psi)
        score_rows.append(scorer(render_for_scoring(G, ws, settings.pseudo_align)).float().cpu())
        w_rows.append(ws[:, 0].cpu())
        s_rows.append(flatten_styles(G.synthesis.styles(ws))[0])
        if progress is not None:
            progress.update(len(ws))
    scores = torch.cat(score_rows).numpy()
    columns = {
        "sample": np.arange(start, start + count),
        "z": z.numpy(),
        "w": torch.cat(w_rows).numpy(),
        "s": np.concatenate(s_rows),
    }
    columns.update({f"score_{name}": scores[:, k] for k, name in enumerate(scorer.names)})
    return columns


def sample_to_chunks(
    G: Generator, scorer, work_dir: str | os.PathLike, settings: SamplingSettings, provenance: dict | None = None
) -> list[Path]:
    """Write ``ceil(n / chunk)`` chunk files ``work_dir/chunk-{k:05d}.parquet`` (skipping finished ones made with
    the same settings, sample count and models, whatever ``n`` and ``batch`` were); returns their paths in order.
    A progress bar over the samples goes to stderr (the job's log) at most every 5 s."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    # What a chunk's rows depend on: not the total n (a run may be extended) nor the batch size.
    made_with = {k: v for k, v in asdict(settings).items() if k not in ("n", "batch")}
    paths = []
    starts = range(0, settings.n, settings.chunk)
    progress = tqdm(total=settings.n, desc="sampling", unit="sample", mininterval=5)
    for k, start in enumerate(starts):
        path = work_dir / f"chunk-{k:05d}.parquet"
        paths.append(path)
        count = min(settings.chunk, settings.n - start)
        identity = {"settings": made_with, "count": count, "generator": _sha(G), "scorer": list(scorer.names)}
        if path.exists() and read_table(path)[1].get("made_with") == identity:
            progress.update(count)
            continue
        columns = sample_chunk(G, scorer, start, count, settings, progress)
        shapes = {"z": [G.z_dim], "w": [G.w_dim], "s": [columns["s"].shape[1]]}
        write_table(path, columns, {"made_with": identity, "shapes": shapes, "provenance": provenance or {}})
        log.info("wrote %s (%d samples)", path, count)
    progress.close()
    return paths


def _sha(G: Generator) -> str | None:
    return (getattr(G, "source", None) or {}).get("sha256")


def join_chunks(paths: list[str | os.PathLike], out_path: str | os.PathLike) -> None:
    """Write the chunks' rows, in order, as one table at ``out_path`` (atomically) with the first chunk's metadata."""
    tables = [pq.read_table(path) for path in paths]
    joined = pa.concat_tables(tables).replace_schema_metadata(tables[0].schema.metadata)
    with atomic_path(out_path) as tmp:
        pq.write_table(joined, tmp)


def sample_arrays(table: pd.DataFrame, metadata: dict) -> dict[str, np.ndarray]:
    """``z``, ``w``, ``s`` as float32 arrays ``[N, dim]`` from a samples table and its metadata."""
    return {name: column_array(table, name, tuple(shape)) for name, shape in metadata["shapes"].items()}
