"""Editing directions: InterFaceGAN boundaries in W and standardized-mean-difference directions in StyleSpace.

W boundaries follow the protocol of the editing repo (yuval-alaluf/stylegan3-editing
``editing/interfacegan/train_boundaries.py``, after InterFaceGAN's ``train_boundary``): keep the top and bottom
``ratio`` of samples by attribute score, label them 1 and 0, split each side 70/30 into train and validation,
fit a linear SVM and take the unit normal ``coef_ / |coef_|``. They are stored as ``.npy`` arrays ``[1, D]``
float32, the format of the official pretrained boundaries, so either kind loads with ``np.load`` or
:func:`load_boundary`.

StyleSpace directions (:func:`style_direction`) work on the flattened per-layer styles of
``G.synthesis.styles(ws)`` without the ``'input'`` entry
(:func:`sg3pipe.networks.stylespace.flatten_styles`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.svm import SVC

from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.errors import ModelFileError

MIN_PER_SIDE = 10  # fewest samples kept on each side of the score ranking (7 train + 3 validation at 70/30)


class BoundaryFileError(ModelFileError):
    """A boundary file cannot be used."""

    kind = "boundary"
    expected = "an InterFaceGAN boundary: a .npy float array of shape [1, D] (or [D]) with finite values"


@dataclass
class Boundary:
    """What :func:`fit_boundary` returns. The hyperplane is ``x @ normal.T + intercept = 0``."""

    normal: np.ndarray  # [1, D] float32 unit vector pointing towards higher scores
    intercept: float  # offset of the hyperplane along the unit normal, in W units
    train_accuracy: float  # on the training half of the kept samples, in [0, 1]
    val_accuracy: float  # on the held-out validation part of the kept samples, in [0, 1]
    n_samples: int  # N, all samples given
    n_used: int  # kept samples: the top and bottom `ratio` by score
    n_train: int
    n_val: int


@dataclass
class StyleDirection:
    """What :func:`style_direction` returns."""

    delta: np.ndarray  # [C] float32, non-zero only on `channels`; the most relevant channel moves by its std
    channels: np.ndarray  # [top_k] int64 indices into the flat StyleSpace, by decreasing |relevance|
    relevance: np.ndarray  # [top_k] float32 standardized mean difference (top minus bottom) of each channel


def _check_scores(values: np.ndarray, scores: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values)  # kept in its dtype: 500,000 W samples are 1 GB as float32
    scores = np.asarray(scores, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"{what} must have shape [N, D], got {list(values.shape)}")
    if scores.shape != (values.shape[0],):
        raise ValueError(
            f"scores must have shape [{values.shape[0]}] (one per row of {what}), got {list(scores.shape)}"
        )
    if not (np.isfinite(values).all() and np.isfinite(scores).all()):
        raise ValueError(f"{what} and scores must be finite")
    return values, scores


def extreme_indices(scores: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """The samples with the highest and the lowest scores, ``int(N * ratio)`` of each.

    Args:
        scores: ``[N]`` attribute scores (any unit; only their order matters).
        ratio: fraction of ``N`` kept on each side, in ``(0, 0.5]``.

    Returns:
        ``(top, bottom)`` index arrays ``[n]``, each ordered from the most extreme score inwards.

    Raises:
        ValueError: fewer than ``MIN_PER_SIDE`` samples per side (the message says how many samples are
            needed), or ties in the scores straddle the two groups so that labels would be arbitrary.
    """
    if not 0 < ratio <= 0.5:
        raise ValueError(f"ratio must be in (0, 0.5], got {ratio}")
    n_total = len(scores)
    n_side = int(n_total * ratio)
    if n_side < MIN_PER_SIDE:
        raise ValueError(
            f"{n_total} samples at ratio {ratio} keep {n_side} per side; need at least {MIN_PER_SIDE} per side, "
            f"i.e. at least {math.ceil(MIN_PER_SIDE / ratio)} samples (or a larger ratio)"
        )
    order = np.argsort(-scores, kind="stable")
    top, bottom = order[:n_side], order[::-1][:n_side]
    if scores[top].min() <= scores[bottom].max():
        raise ValueError(
            f"the top and bottom {n_side} scores overlap (ties around {scores[top].min():g}); "
            "the scores do not rank the samples"
        )
    return top, bottom


def fit_boundary(
    latents: np.ndarray, scores: np.ndarray, ratio: float = 0.02, train_fraction: float = 0.7, seed: int = 0
) -> Boundary:
    """Fit an InterFaceGAN boundary to latent codes and their attribute scores (the official protocol).

    The top and bottom ``ratio`` of samples by score are labelled 1 and 0; each side is shuffled with ``seed``
    and its first ``int(n * train_fraction)`` samples train ``sklearn.svm.SVC(kernel="linear")`` (libsvm, as
    the official code; ``LinearSVC`` would use a squared hinge and penalise the intercept, so it is not used).
    The rest validate it. Deterministic for a given ``seed``.

    Args:
        latents: ``[N, D]`` codes, e.g. one W row per sample (W units, not standardised).
        scores: ``[N]`` attribute scores; higher means more of the attribute.
        ratio: fraction of ``N`` kept on each side, in ``(0, 0.5]``.
        train_fraction: fraction of each side used for training, in ``(0, 1)``.
        seed: seed of the shuffle before the split.

    Returns:
        :class:`Boundary` with the unit normal ``[1, D]`` float32 pointing towards higher scores.

    Raises:
        ValueError: bad shapes or values, or too few samples (see :func:`extreme_indices`).
    """
    latents, scores = _check_scores(latents, scores, "latents")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    top, bottom = extreme_indices(scores, ratio)
    n_side = len(top)
    n_train_side = int(n_side * train_fraction)
    rng = np.random.default_rng(seed)
    top, bottom = rng.permutation(top), rng.permutation(bottom)
    train = np.concatenate([top[:n_train_side], bottom[:n_train_side]])
    val = np.concatenate([top[n_train_side:], bottom[n_train_side:]])
    labels = np.zeros(len(scores), dtype=np.int64)
    labels[top] = 1

    x_train, x_val = latents[train].astype(np.float64), latents[val].astype(np.float64)
    svm = SVC(kernel="linear").fit(x_train, labels[train])
    coef = svm.coef_.reshape(-1)
    norm = np.linalg.norm(coef)
    if norm == 0:
        raise ValueError("the SVM found no direction: the kept latents of both groups are identical")
    return Boundary(
        normal=(coef / norm).astype(np.float32)[None],
        intercept=float(svm.intercept_[0] / norm),
        train_accuracy=float(svm.score(x_train, labels[train])),
        val_accuracy=float(svm.score(x_val, labels[val])),
        n_samples=len(scores),
        n_used=2 * n_side,
        n_train=len(train),
        n_val=len(val),
    )


def conditional_normal(normal: np.ndarray, conditions: np.ndarray) -> np.ndarray:
    """InterFaceGAN's conditional manipulation: ``normal`` with its component in the span of ``conditions``
    removed, renormalised. Moving along the result leaves every condition's projection ``x . c`` unchanged, so
    under the linear model an edit changes its own attribute and none of the others. The official code projects
    on one or two conditions; this takes any number (an orthonormal basis of their span by SVD, so conditions
    that repeat one another are fine).

    Args:
        normal: ``[1, D]`` unit normal of the primal attribute.
        conditions: ``[K, D]`` normals of the attributes to keep (``K = 0``: the normal itself).

    Returns:
        ``[1, D]`` float32 unit vector orthogonal to every row of ``conditions``.

    Raises:
        ValueError: bad shapes, or ``normal`` lies in the span of ``conditions`` (nothing is left of it).
    """
    normal = np.asarray(normal, dtype=np.float64)
    conditions = np.asarray(conditions, dtype=np.float64)
    if normal.ndim != 2 or normal.shape[0] != 1 or conditions.ndim != 2 or conditions.shape[1] != normal.shape[1]:
        shapes = f"{list(normal.shape)}, {list(conditions.shape)}"
        raise ValueError(f"expected normal [1, D] and conditions [K, D], got {shapes}")
    u, singular, _ = np.linalg.svd(conditions.T, full_matrices=False)
    basis = u[:, singular > 1e-6 * singular.max(initial=0.0)]  # [D, rank], orthonormal columns
    rest = normal[0] - basis @ (basis.T @ normal[0])
    norm = np.linalg.norm(rest)
    if norm < 1e-6 * np.linalg.norm(normal):
        raise ValueError("the normal lies in the span of the conditions: no conditional direction is left")
    return (rest / norm).astype(np.float32)[None]


def save_boundary(path: str | os.PathLike, normal: np.ndarray) -> None:
    """Write a boundary ``[1, D]`` (or ``[D]``) as a ``.npy`` float32 ``[1, D]``, atomically.

    The file is what the official code loads: ``torch.from_numpy(np.load(path))``.
    """
    normal = np.asarray(normal, dtype=np.float32)
    if normal.ndim == 1:
        normal = normal[None]
    if normal.ndim != 2 or normal.shape[0] != 1:
        raise ValueError(f"normal must have shape [1, D] or [D], got {list(normal.shape)}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, normal, allow_pickle=False)


def load_boundary(path: str | os.PathLike, w_dim: int | None = None) -> np.ndarray:
    """Read a boundary written by :func:`save_boundary` or an official pretrained InterFaceGAN ``.npy``.

    Nothing is normalised; ``[D]`` arrays are read as ``[1, D]`` and any float dtype becomes float32.

    Args:
        w_dim: expected ``D`` (the generator's ``w_dim``); ``None`` accepts any.

    Returns:
        ``[1, D]`` float32.

    Raises:
        FileNotFoundError: no file at ``path``.
        BoundaryFileError: (a ValueError) the file is not a ``.npy`` array, or has another shape, dtype or
            ``D``, or non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"boundary file {path} does not exist; expected {BoundaryFileError.expected}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise BoundaryFileError(path, f"not a readable .npy array ({error})") from error
    if not isinstance(array, np.ndarray):
        raise BoundaryFileError(path, "an .npz archive, not a single array")
    if not np.issubdtype(array.dtype, np.floating):
        raise BoundaryFileError(path, f"dtype {array.dtype}")
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] != 1:
        raise BoundaryFileError(path, f"shape {list(array.shape)}")
    if w_dim is not None and array.shape[1] != w_dim:
        raise BoundaryFileError(path, f"D = {array.shape[1]}", f"a boundary of shape [1, {w_dim}] (the w_dim)")
    if not np.isfinite(array).all():
        raise BoundaryFileError(path, "non-finite values")
    return array.astype(np.float32)


def projection_std(latents: np.ndarray, normal: np.ndarray) -> float:
    """Standard deviation of the latents' coordinate along ``normal``, to give edit factors in std units.

    The coordinate is ``c = x . n / |n|^2``, so that adding ``f * n`` to a code moves ``c`` by exactly ``f``;
    for a unit normal (every boundary here and in the official files) it is the projection ``x . n``.
    A raw factor of 5 therefore moves a code 5 W units along a unit normal, which is
    ``5 / projection_std(latents, normal)`` standard deviations of the samples (see
    :func:`sg3pipe.editing.edits.factor_in_raw_units` for the other way).

    Args:
        latents: ``[N, D]`` codes (e.g. the W samples the boundary was fitted on).
        normal: ``[1, D]`` direction.

    Returns:
        The standard deviation (ddof 0) of ``c`` over the ``N`` codes, in units of ``normal``.
    """
    latents = np.asarray(latents, dtype=np.float64)
    normal = np.asarray(normal, dtype=np.float64)
    if latents.ndim != 2 or normal.shape != (1, latents.shape[1]):
        raise ValueError(f"expected latents [N, D] and normal [1, D], got {list(latents.shape)}, {list(normal.shape)}")
    norm_sq = float(normal[0] @ normal[0])
    if norm_sq == 0:
        raise ValueError("normal is the zero vector")
    return float(np.std(latents @ normal[0] / norm_sq))


def style_direction(styles_flat: np.ndarray, scores: np.ndarray, top_k: int, ratio: float = 0.02) -> StyleDirection:
    """A StyleSpace direction from the channels whose values differ most between high- and low-score samples.

    Relevance of channel ``c``: ``r_c = (mean_top_c - mean_bottom_c) / std_c``, the difference of the channel's
    means over the top and bottom ``ratio`` of samples by score, divided by its std over all ``N`` samples (a
    standardized mean difference; a constant channel has ``r_c = 0``). The ``top_k`` channels with the largest
    ``|r_c|`` are kept and, as in StyleCLIP's global directions (yuval-alaluf/stylegan3-editing
    ``editing/styleclip_global_directions/global_direction.py``), the relevances are scaled so that
    ``max |r| = 1`` and multiplied by the channel std: ``delta_c = r_c / max|r| * std_c``. An edit
    ``s + alpha * delta`` then moves the most relevant channel by ``alpha`` of its standard deviations, in the
    direction of higher scores.

    Args:
        styles_flat: ``[N, C]`` flat StyleSpace codes (:func:`flatten_styles`).
        scores: ``[N]`` attribute scores; higher means more of the attribute.
        top_k: number of channels kept, in ``[1, C]``.
        ratio: fraction of ``N`` in each group, in ``(0, 0.5]`` (see :func:`extreme_indices`).

    Returns:
        :class:`StyleDirection`.
    """
    styles_flat, scores = _check_scores(styles_flat, scores, "styles_flat")
    n_channels = styles_flat.shape[1]
    if not 1 <= top_k <= n_channels:
        raise ValueError(f"top_k must be in [1, {n_channels}], got {top_k}")
    top, bottom = extreme_indices(scores, ratio)
    std = styles_flat.std(axis=0, dtype=np.float64)
    difference = styles_flat[top].mean(axis=0, dtype=np.float64) - styles_flat[bottom].mean(axis=0, dtype=np.float64)
    relevance = np.divide(difference, std, out=np.zeros_like(std), where=std > 0)
    channels = np.argsort(-np.abs(relevance), kind="stable")[:top_k]
    largest = np.abs(relevance[channels[0]])
    if largest == 0:
        raise ValueError("no channel differs between the top and bottom samples")
    delta = np.zeros(n_channels, dtype=np.float32)
    delta[channels] = relevance[channels] / largest * std[channels]
    return StyleDirection(
        delta=delta, channels=channels.astype(np.int64), relevance=relevance[channels].astype(np.float32)
    )
