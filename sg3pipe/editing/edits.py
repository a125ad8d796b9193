"""Applying edits: move W+ latents along a boundary, or flat StyleSpace codes along a style direction.

Edits are batched over frames and applied to every frame given. Frames that an earlier stage marked unusable
are edited like the others; the caller keeps their rows and their status, so tables stay one row per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

SPACES = ("w", "w+", "s")
UNITS = ("raw", "std")


@dataclass
class EditSpec:
    """One named edit: which direction, in which space, by which factors.

    ``space``: ``"w"`` adds a W boundary ``[1, D]`` to all W+ rows alike, as the official code does (``rows``
    must be ``None``; a code in W stays in W); ``"w+"`` adds it to the W+ rows in ``rows`` only (``None``: all
    of them, the same as ``"w"``); ``"s"`` adds a StyleSpace direction ``[C]`` to flat styles (no ``rows``).
    ``unit``: ``"raw"`` factors multiply the direction as stored; ``"std"`` factors are in standard deviations
    of the samples along it (:func:`factor_in_raw_units`).
    """

    name: str  # edit name used in file names, e.g. "smile"
    direction: str  # name of the direction file, e.g. "smiling"
    space: Literal["w", "w+", "s"]
    factors: list[float]  # e.g. [-2.0, 2.0]
    unit: Literal["raw", "std"] = "raw"
    rows: list[int] | None = None  # W+ rows the edit changes ("w+" only); None: all rows

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"edit {self.name!r}: space must be one of {SPACES}, got {self.space!r}")
        if self.unit not in UNITS:
            raise ValueError(f"edit {self.name!r}: unit must be one of {UNITS}, got {self.unit!r}")
        if not self.factors:
            raise ValueError(f"edit {self.name!r}: give at least one factor")
        if self.rows is not None and self.space != "w+":
            raise ValueError(f"edit {self.name!r}: rows apply to space 'w+' only, not {self.space!r}")
        if self.rows is not None and (not self.rows or min(self.rows) < 0 or len(set(self.rows)) != len(self.rows)):
            raise ValueError(f"edit {self.name!r}: rows must be distinct non-negative indices, got {self.rows}")


def factor_in_raw_units(factor: float, unit: str, std: float) -> float:
    """An edit factor in the direction's own units.

    Args:
        factor: the factor as configured.
        unit: ``"raw"`` (returned as is) or ``"std"`` (standard deviations: returns ``factor * std``).
        std: the samples' standard deviation along the direction, e.g.
            :func:`sg3pipe.editing.directions.projection_std`; must be positive (used for ``"std"`` only).
    """
    if unit == "raw":
        return float(factor)
    if unit != "std":
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if not (np.isfinite(std) and std > 0):
        raise ValueError(f"std must be positive and finite, got {std}")
    return float(factor) * float(std)


def _add(values: Array, offset: np.ndarray) -> Array:
    """``values + offset`` (broadcast) in ``values``' type, dtype and device."""
    if isinstance(values, torch.Tensor):
        return values + torch.as_tensor(offset, dtype=values.dtype, device=values.device)
    return values + offset.astype(values.dtype)


def edit_latents(ws: Array, normal: np.ndarray, factor: float, rows: list[int] | None = None) -> Array:
    """Move W+ latents along a boundary: ``ws[:, rows] + factor * normal``, all frames at once.

    Args:
        ws: ``[F, L, D]`` W+ latents, numpy or torch (any float dtype and device).
        normal: ``[1, D]`` direction (a unit normal for InterFaceGAN boundaries).
        factor: raw factor, in units of ``normal`` (see :func:`factor_in_raw_units`).
        rows: W+ rows to change, in ``[0, L)``; ``None``: all ``L`` rows, as the official code does.

    Returns:
        ``[F, L, D]`` edited latents, a new array of the same type, dtype and device as ``ws``.
    """
    if ws.ndim != 3:
        raise ValueError(f"ws must have shape [F, L, D], got {list(ws.shape)}")
    num_rows, w_dim = ws.shape[1], ws.shape[2]
    normal = np.asarray(normal, dtype=np.float64)
    if normal.shape != (1, w_dim):
        raise ValueError(f"normal must have shape [1, {w_dim}], got {list(normal.shape)}")
    row_mask = np.ones(num_rows)
    if rows is not None:
        if not all(0 <= row < num_rows for row in rows):
            raise ValueError(f"rows must be in [0, {num_rows}), got {rows}")
        row_mask = np.zeros(num_rows)
        row_mask[list(rows)] = 1
    return _add(ws, factor * row_mask[:, None] * normal)


def edit_styles(styles_flat: Array, delta: np.ndarray, factor: float) -> Array:
    """Move flat StyleSpace codes along a style direction: ``styles_flat + factor * delta``.

    Args:
        styles_flat: ``[F, C]`` flat styles (:func:`sg3pipe.networks.stylespace.flatten_styles`), numpy or torch.
        delta: ``[C]`` direction (:class:`sg3pipe.editing.directions.StyleDirection` ``.delta``).
        factor: raw factor; 1 moves the direction's most relevant channel by one of its standard deviations.

    Returns:
        ``[F, C]`` edited styles, a new array of the same type, dtype and device as ``styles_flat``.
    """
    if styles_flat.ndim != 2:
        raise ValueError(f"styles_flat must have shape [F, C], got {list(styles_flat.shape)}")
    delta = np.asarray(delta, dtype=np.float64)
    if delta.shape != (styles_flat.shape[1],):
        raise ValueError(f"delta must have shape [{styles_flat.shape[1]}], got {list(delta.shape)}")
    return _add(styles_flat, factor * delta[None])
