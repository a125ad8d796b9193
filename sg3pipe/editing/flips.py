"""How cleanly each direction edits: the flip table.

For held-out samples, each direction's edit moves every sample towards the other side of its attribute (a
sample scored positive by ``-factor``, a negative one by ``+factor``, the factor in standard deviations of the
samples along the direction); the table gives, per direction (row) and attribute (column), the share of
samples whose decision (score > 0.5) changed. The diagonal is how often the edit does what it is for; the
rest, how often it changes something else (lower is more disentangled).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from sg3pipe.editing.sampling import SamplingSettings, pseudo_aligned, render_for_scoring, sample_z
from sg3pipe.editing.video_edits import load_direction
from sg3pipe.io.tables import read_table
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.networks.stylespace import flatten_styles, render_flat_styles

# The directions a flip table measures, as (space, source) of directions.parquet, in the order of the table.
FLIP_GROUPS = (("w", "fitted"), ("w", "conditional"), ("s", "fitted"))


@torch.no_grad()
def flip_table(
    G: Generator,
    scorer,
    directions: dict[str, tuple[str, np.ndarray, float]],
    factor_std: float,
    n: int = 256,
    settings: SamplingSettings | None = None,
    first_seed: int = 10_000_000,
    progress: tqdm | None = None,
) -> pd.DataFrame:
    """The share of ``n`` held-out samples whose decision on each attribute an edit changed.

    Args:
        scorer: images -> ``[N, K]`` scores with ``names``.
        directions: attribute -> ``(space, direction, std)``: ``"w"`` with a ``[1, w_dim]`` boundary or ``"s"``
            with a ``[C]`` StyleSpace delta, and the samples' std along it (``directions.parquet``'s ``std``).
        factor_std: the edit's size in standard deviations.
        settings: truncation, pseudo-alignment and batch of the renders (as for direction finding).
        first_seed: seeds ``first_seed .. first_seed + n - 1`` (far from direction finding's).
        progress: a tqdm bar advanced by every batch of renders scored (``n * (len(directions) + 1)`` in all).

    Returns:
        ``[len(directions), K]`` table, index: direction attribute, columns: the scorer's attributes.
    """
    return flip_tables_read_by(G, {"": scorer}, directions, factor_std, n, settings, first_seed, progress)[""]


@torch.no_grad()
def flip_tables_read_by(
    G: Generator,
    scorers: dict,
    directions: dict[str, tuple[str, np.ndarray, float]],
    factor_std: float,
    n: int = 256,
    settings: SamplingSettings | None = None,
    first_seed: int = 10_000_000,
    progress: tqdm | None = None,
) -> dict[str, pd.DataFrame]:
    """:func:`flip_table` read by each of ``scorers`` (name -> scorer), each choosing every sample's side by its
    own decision: name -> table. One scorer renders only the side it chose for each sample; several render both
    sides of every edit once and all read them: ``n * (2 * len(directions) + 1)`` renders in all, where one
    scorer at a time would take ``n * (len(directions) + 1)`` each."""
    settings = settings or SamplingSettings()
    device = G.mapping.w_avg.device
    z = sample_z(first_seed + np.arange(n), G.z_dim).to(device)
    ws = G.mapping(z, truncation_psi=settings.truncation_psi)
    before = _decisions(G, scorers, ws, None, settings, progress)
    tables = {name: {} for name in scorers}
    for attribute, (space, direction, std) in directions.items():
        if len(scorers) == 1:
            [(name, scorer)] = scorers.items()
            sign = 1.0 - 2.0 * before[name][:, scorer.names.index(attribute)].float()  # positive -> -1, else +1
            after = _edited_decisions(G, scorers, ws, sign * factor_std * std, space, direction, settings, progress)
        else:
            plus = _edited_decisions(
                G, scorers, ws, torch.ones(n) * factor_std * std, space, direction, settings, progress
            )
            minus = _edited_decisions(
                G, scorers, ws, -torch.ones(n) * factor_std * std, space, direction, settings, progress
            )
            after = {}
            for name, scorer in scorers.items():
                negative = ~before[name][:, scorer.names.index(attribute)]  # these move by +factor
                after[name] = torch.where(negative[:, None], plus[name], minus[name])
        for name in scorers:
            tables[name][attribute] = (after[name] != before[name]).float().mean(0).numpy()
    return {
        name: pd.DataFrame.from_dict(tables[name], orient="index", columns=scorer.names)
        for name, scorer in scorers.items()
    }


def _edited_decisions(
    G: Generator,
    scorers: dict,
    ws: torch.Tensor,
    step: torch.Tensor,
    space: str,
    direction: np.ndarray,
    settings: SamplingSettings,
    progress: tqdm | None,
) -> dict[str, torch.Tensor]:
    """Each scorer's decisions on the renders of ``ws [N, L, w_dim]`` moved by ``step [N]`` along ``direction``
    (a W boundary when ``space`` is ``"w"``, else a StyleSpace delta)."""
    device = ws.device
    step = step.to(device)
    if space == "w":
        edited = ws + step[:, None, None] * torch.as_tensor(direction, dtype=ws.dtype, device=device)
        return _decisions(G, scorers, edited, None, settings, progress)
    flat = torch.from_numpy(flatten_styles(G.synthesis.styles(ws))[0]).to(device)
    flat = flat + step[:, None] * torch.as_tensor(direction, dtype=flat.dtype, device=device)
    return _decisions(G, scorers, ws, flat, settings, progress)


def _decisions(
    G: Generator, scorers: dict, ws: torch.Tensor, flat_styles, settings: SamplingSettings, progress: tqdm | None
) -> dict[str, torch.Tensor]:
    """Name -> ``[N, K]`` bool decisions of each of ``scorers`` on the renders of ``ws`` (or of
    ``flat_styles`` when given), each image rendered once."""
    out = {name: [] for name in scorers}
    for start in range(0, len(ws), settings.batch):
        chunk = ws[start : start + settings.batch]
        if flat_styles is None:
            images = render_for_scoring(G, chunk, settings.pseudo_align)
        else:
            chunk = pseudo_aligned(G, chunk, settings.pseudo_align)
            images = render_flat_styles(G, chunk, flat_styles[start : start + settings.batch])
        for name, scorer in scorers.items():
            out[name].append(scorer(images) > 0.5)
        if progress is not None:
            progress.update(len(chunk))
    return {name: torch.cat(parts).cpu() for name, parts in out.items()}


def flip_tables(
    G: Generator,
    scorer,
    directions_dir: str | os.PathLike,
    factor_std: float,
    n: int = 256,
    settings: SamplingSettings | None = None,
) -> pd.DataFrame:
    """:func:`flip_table` of every fitted and conditional direction of a directions folder: fitted W boundaries,
    their conditional twins when the folder has them, and fitted StyleSpace directions, stacked with columns
    ``space``, ``source``, ``direction`` (the attribute) and one per attribute of ``scorer``. A progress bar over
    the renders goes to stderr (the job's log) at most every 5 s."""
    return flip_tables_by_readers(G, {"": scorer}, directions_dir, factor_std, n, settings).drop(columns="reader")


def flip_tables_by_readers(
    G: Generator,
    scorers: dict,
    directions_dir: str | os.PathLike,
    factor_std: float,
    n: int = 256,
    settings: SamplingSettings | None = None,
) -> pd.DataFrame:
    """:func:`flip_tables` read by each of ``scorers`` (name -> scorer, all with the same ``names``; the edits
    rendered once for all, :func:`flip_tables_read_by`), stacked with a first column ``reader``, the name."""
    listed, _ = read_table(Path(directions_dir) / "directions.parquet")
    groups = [(space, source, listed[(listed["space"] == space) & (listed["source"] == source)])
              for space, source in FLIP_GROUPS]  # fmt: skip
    groups = [(space, source, chosen) for space, source, chosen in groups if not chosen.empty]
    sides = 1 if len(scorers) == 1 else 2
    progress = tqdm(total=sum(n * (sides * len(chosen) + 1) for *_, chosen in groups), desc="flip table",
                    unit="render", mininterval=5)  # fmt: skip
    parts = []
    for space, source, chosen in groups:
        directions = {}
        for name, attribute in zip(chosen["name"], chosen["attribute"], strict=True):
            direction, row = load_direction(directions_dir, name)
            directions[attribute] = (space, direction, row["std"])
        for reader, table in flip_tables_read_by(
            G, scorers, directions, factor_std, n, settings, progress=progress
        ).items():
            parts.append(table.rename_axis("direction").reset_index().assign(space=space, source=source, reader=reader))
    progress.close()
    names = next(iter(scorers.values())).names
    return pd.concat(parts, ignore_index=True)[["reader", "space", "source", "direction", *names]]


def describe_flips(table: pd.DataFrame, factor_std: float, n: int) -> str:
    """The flip tables as text, one block per space and source, each with its worst off-diagonal share."""
    blocks = []
    for (space, source), part in table.groupby(["space", "source"], sort=False):
        values = part.drop(columns=["space", "source"]).set_index("direction")
        off = [values.loc[d, a] for d in values.index for a in values.columns if a != d]
        title = (
            f"space {space}, {source} directions: share of {n} held-out samples whose decision changed "
            f"(rows: the direction edited, {factor_std:g} std towards the other side; columns: attributes); "
            f"own attribute at least {min(values.loc[d, d] for d in values.index):.3f}, any other at most "
            f"{max(off, default=0.0):.3f}"
        )
        blocks.append(f"{title}\n{values.round(3).to_string()}\n")
    return "\n".join(blocks)
