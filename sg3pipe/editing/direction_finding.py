"""Find one editing direction per attribute from scored samples, in W (InterFaceGAN) and in StyleSpace, and
write them as files: ``{attribute}.npy`` (the W boundary, ``[1, w_dim]``, loadable by the official code as it
is), ``{attribute}.s.npy`` (the StyleSpace delta, ``[C]``) and a ``directions.parquet`` table describing them.
With ``conditional`` set, each W boundary also gets a conditional twin ``{attribute}.cond.npy``: the normal
with the other attributes' normals projected out (InterFaceGAN's conditional manipulation). Official
pretrained InterFaceGAN boundaries join the table as directions of their own.

What a factor means: an edit adds ``factor * direction``. A W boundary is a unit vector, so a raw factor of 5
moves the latent 5 W units; the table's ``std`` column is the samples' standard deviation along the
direction (in the direction's own units), so a raw factor of 5 is ``5 / std`` standard deviations, and an edit
configured in ``std`` units multiplies its factors by ``std``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sg3pipe.editing.directions import (
    Boundary,
    StyleDirection,
    conditional_normal,
    fit_boundary,
    load_boundary,
    projection_std,
    save_boundary,
    style_direction,
)
from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.tables import write_frame

log = logging.getLogger(__name__)

SCORE_PREFIX = "score_"


@dataclass(frozen=True)
class DirectionSettings:
    """How directions are fitted (the official protocol's defaults)."""

    ratio: float = 0.02  # top and bottom share of samples by score kept for the SVM
    train_fraction: float = 0.7  # of the kept samples, the share that trains it (the rest validates)
    seed: int = 0
    style_top_k: int = 16  # StyleSpace channels kept per direction
    conditional: bool = False  # also write each W boundary conditioned on all the other fitted ones


def attributes_of(samples: pd.DataFrame) -> list[str]:
    """The attribute names a samples table was scored for (its ``score_{name}`` columns, in order)."""
    return [c[len(SCORE_PREFIX) :] for c in samples.columns if c.startswith(SCORE_PREFIX)]


def find_directions(
    samples: pd.DataFrame,
    arrays: dict[str, np.ndarray],
    out_dir: str | os.PathLike,
    settings: DirectionSettings,
    pretrained: dict[str, str] | None = None,
    provenance: dict | None = None,
    styleclip: dict[str, StyleDirection] | None = None,
) -> pd.DataFrame:
    """Fit and write the directions of every scored attribute; returns the directions table.

    Args:
        samples: a samples table (``sg3pipe.editing.sampling``) with ``score_{name}`` columns.
        arrays: its ``w [N, w_dim]`` and ``s [N, C]`` arrays (:func:`sg3pipe.editing.sampling.sample_arrays`).
        out_dir: folder for the ``.npy`` files and ``directions.parquet``.
        pretrained: name -> path of an official InterFaceGAN boundary ``.npy`` to list too (checked, copied).
        styleclip: name -> StyleCLIP global direction (:mod:`sg3pipe.editing.styleclip`) to write and list, as
            ``{name}.s``.

    Returns:
        One row per direction: ``name``, ``attribute``, ``space`` (``w`` or ``s``), ``file``, ``source``
        (``fitted``, ``conditional``, ``pretrained`` or ``styleclip``), ``n_samples``, ``n_used``,
        ``train_accuracy``, ``val_accuracy`` (of the SVM: NaN but for fitted W boundaries), ``channels`` (S),
        ``std`` (samples' std along the direction).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    w, s = arrays["w"], arrays["s"]
    rows, boundaries = [], {}
    for attribute in attributes_of(samples):
        scores = samples[SCORE_PREFIX + attribute].to_numpy(np.float64)
        boundary = fit_boundary(w, scores, settings.ratio, settings.train_fraction, settings.seed)
        boundaries[attribute] = boundary
        log.info(
            "%s: W boundary, validation accuracy %.3f on %d samples", attribute, boundary.val_accuracy, boundary.n_val
        )
        rows.append(_boundary_row(out_dir, attribute, attribute, boundary.normal, w, "fitted", boundary))
        direction = style_direction(s, scores, settings.style_top_k, settings.ratio)
        # the same top and bottom samples as the boundary's
        rows.append(_style_row(out_dir, attribute, direction, s, "fitted", boundary.n_samples, boundary.n_used))
    if settings.conditional and len(boundaries) > 1:
        for attribute, boundary in boundaries.items():
            others = np.concatenate([fit.normal for other, fit in boundaries.items() if other != attribute])
            try:
                normal = conditional_normal(boundary.normal, others)
            except ValueError as err:  # more attributes than W has dimensions: the others span all of it
                log.warning("%s.cond not written: %s (%d other normals in %d dimensions)", attribute, err,
                            len(others), w.shape[1])  # fmt: skip
                continue
            rows.append(_boundary_row(out_dir, f"{attribute}.cond", attribute, normal, w, "conditional", boundary))
    for name, path in (pretrained or {}).items():
        normal = load_boundary(path, w_dim=w.shape[1])
        rows.append(_boundary_row(out_dir, name, name, normal, w, "pretrained"))
    for name, direction in (styleclip or {}).items():
        rows.append(_style_row(out_dir, name, direction, s, "styleclip", len(s), 0))
    table = pd.DataFrame(rows)
    write_frame(
        out_dir / "directions.parquet",
        table,
        {"provenance": provenance or {}, "settings": asdict(settings), "factor_units": __doc__.split("\n\n")[1]},
    )
    return table


def _boundary_row(
    out_dir: Path,
    name: str,
    attribute: str,
    normal: np.ndarray,
    w: np.ndarray,
    source: str,
    fit: Boundary | None = None,
) -> dict:
    """Write a W direction ``[1, w_dim]`` as ``{name}.npy`` in ``out_dir``; returns its directions-table row, with
    the sample counts of the fit it comes from and, for a fitted boundary, its SVM accuracies."""
    save_boundary(out_dir / f"{name}.npy", normal)
    fitted = source == "fitted"
    return {
        "name": name,
        "attribute": attribute,
        "space": "w",
        "file": f"{name}.npy",
        "source": source,
        "n_samples": fit.n_samples if fit else 0,
        "n_used": fit.n_used if fit else 0,
        "train_accuracy": fit.train_accuracy if fitted else np.nan,
        "val_accuracy": fit.val_accuracy if fitted else np.nan,
        "channels": "",
        "std": projection_std(w, normal),
    }


def _style_row(
    out_dir: Path, attribute: str, direction: StyleDirection, s: np.ndarray, source: str, n_samples: int, n_used: int
) -> dict:
    """Write a StyleSpace direction as ``{attribute}.s.npy`` in ``out_dir``; returns its directions-table row."""
    with atomic_path(out_dir / f"{attribute}.s.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, direction.delta)
    return {
        "name": f"{attribute}.s",
        "attribute": attribute,
        "space": "s",
        "file": f"{attribute}.s.npy",
        "source": source,
        "n_samples": n_samples,
        "n_used": n_used,
        "train_accuracy": np.nan,
        "val_accuracy": np.nan,
        "channels": " ".join(str(c) for c in direction.channels),
        "std": projection_std(s, direction.delta[None]),
    }
