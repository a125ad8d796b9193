"""Temporal consistency of a video: jitter of per-frame values, and STIT's TL-ID and TG-ID.

STIT (Tzaban et al. 2022) measures how well an edited video keeps its identity over time. With ``S`` the
matrix of identity cosine similarities between its frames, TL-ID (local) is the mean over adjacent frames
of ``S_edit[i, i+1] / S_src[i, i+1]`` and TG-ID (global) the same over all pairs ``i < j``: 1.0 means as
consistent as the source, below 1 the identity flickers (local) or drifts (global).
"""

from __future__ import annotations

import numpy as np


def jitter(values: np.ndarray, usable: np.ndarray) -> float:
    """Root mean square of the change between consecutive usable frames.

    Args:
        values: ``[N, ...]`` per-frame values (latents, transform parameters), in their own units.
        usable: ``[N]`` bool; only pairs of adjacent frames that are both usable count.

    Returns:
        RMS over the pairs of the L2 norm of ``values[t + 1] - values[t]`` (same units as ``values``);
        NaN when no such pair exists.
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    usable = np.asarray(usable, dtype=bool)
    pairs = usable[:-1] & usable[1:]
    if not pairs.any():
        return float("nan")
    steps = np.linalg.norm(values[1:][pairs] - values[:-1][pairs], axis=1)
    return float(np.sqrt(np.mean(steps**2)))


def cosine_matrix(descriptors: np.ndarray) -> np.ndarray:
    """``[N, N]`` cosine similarities of identity descriptors ``[N, D]``."""
    unit = descriptors / np.linalg.norm(descriptors, axis=1, keepdims=True)
    return unit @ unit.T


def identity_consistency(source: np.ndarray, edited: np.ndarray, usable: np.ndarray) -> dict[str, float]:
    """STIT's TL-ID and TG-ID of an edited video against its source (module docstring).

    Args:
        source, edited: ``[N, D]`` identity descriptors of each frame of the source and of the edit.
        usable: ``[N]`` bool; pairs with an unusable frame are left out.

    Returns:
        ``{"tl_id": float, "tg_id": float}``, NaN where no pair counts.
    """
    usable = np.asarray(usable, dtype=bool)
    ratio = cosine_matrix(np.asarray(edited, dtype=np.float64)) / cosine_matrix(np.asarray(source, dtype=np.float64))
    adjacent = usable[:-1] & usable[1:]
    local = np.diagonal(ratio, offset=1)[adjacent]
    upper = np.triu(np.outer(usable, usable), k=1)
    return {
        "tl_id": float(local.mean()) if local.size else float("nan"),
        "tg_id": float(ratio[upper].mean()) if upper.any() else float("nan"),
    }
