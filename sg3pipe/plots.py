"""The figures of the run report (``snakemake --report``): transform trajectories, per-frame metrics and the
rotation-control grids. Each writes one PNG atomically; matplotlib draws off screen (Agg). Tables are
sg3pipe.io.html's."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sg3pipe.faces.alignment import ffhq_quad  # noqa: E402
from sg3pipe.faces.crop_transforms import crop_transforms  # noqa: E402
from sg3pipe.io.atomic import atomic_path  # noqa: E402
from sg3pipe.io.tables import column_array  # noqa: E402
from sg3pipe.tracks import track_name, track_rows  # noqa: E402

TRAJECTORY_PARAMETERS = (("angle_deg", "angle (degrees)"), ("tx", "tx (image widths)"), ("ty", "ty (image widths)"))


def save_figure(fig: plt.Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` as a PNG atomically and close it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def true_crop_transforms(truth: pd.DataFrame, frames: pd.DataFrame) -> dict[str, np.ndarray]:
    """The crop transforms the frames stage would compute from the true landmarks of a synthetic clip.

    Args:
        truth: a ground-truth table (``samples/*.truth.parquet``) with a ``landmarks`` column of 68 points.
        frames: the video's ``frames.parquet`` (its crop window, ``crop_quad``); rows beyond the truth get NaN.

    Returns:
        ``angle_deg``, ``tx``, ``ty`` (``[N]``, N = frames) as in ``frames.parquet``.
    """
    n = len(frames)
    window = column_array(frames, "crop_quad", (4, 2))[0].astype(np.float64)
    landmarks = np.full((n, 68, 2), np.nan)
    known = column_array(truth, "landmarks", (68, 2)).astype(np.float64)[:n]
    landmarks[: len(known)] = known
    expected = crop_transforms(ffhq_quad(landmarks), window)
    return {name: np.asarray(expected[name], dtype=np.float64) for name, _ in TRAJECTORY_PARAMETERS}


def trajectory_plot(
    path: str | os.PathLike, frames: pd.DataFrame, smoothed: pd.DataFrame, truth: pd.DataFrame | None = None
) -> None:
    """Transform parameters per frame, raw (``frames.parquet``) against smoothed (``smoothed.parquet``) and,
    when a ground-truth table is given (one-face clips), the truth (:func:`true_crop_transforms`): one panel per
    parameter, a pair of lines per face track."""
    tracks = track_rows(frames["track"].to_numpy())
    expected = true_crop_transforms(truth, frames) if truth is not None and len(tracks) == 1 else None
    fig, axes = plt.subplots(len(TRAJECTORY_PARAMETERS), 1, figsize=(7, 6), sharex=True)
    for ax, (name, label) in zip(axes, TRAJECTORY_PARAMETERS, strict=True):
        if expected is not None:
            ax.plot(np.arange(len(frames)), expected[name], color="0.2", lw=2.5, alpha=0.35, label="ground truth")
        for track, rows in enumerate(tracks):
            face = f" {track_name(track)}" if len(tracks) > 1 else ""
            frame = np.arange(len(rows))
            ax.plot(frame, frames[name].to_numpy(dtype=np.float64)[rows], lw=0.8, label=f"raw{face}")
            ax.plot(frame, smoothed[name].to_numpy(dtype=np.float64)[rows], lw=1.2, label=f"smoothed{face}")
        ax.set_ylabel(label)
    axes[0].legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("frame")
    save_figure(fig, path)


def metrics_plot(path: str | os.PathLike, metrics: pd.DataFrame) -> None:
    """Per-frame metrics of the rendered variants (``metrics.parquet``): one panel per metric (``l2``,
    ``lpips``, ``identity``), one line per variant and face track (a colour per variant, a line style per track);
    unusable frames are gaps."""
    kinds = [kind for kind in ("l2", "lpips", "identity") if any(c.startswith(f"{kind}.") for c in metrics.columns)]
    fig, axes = plt.subplots(len(kinds), 1, figsize=(7, 2.4 * len(kinds)), sharex=True, squeeze=False)
    tracks = track_rows(metrics["track"].to_numpy())
    styles = ("-", "--", ":", "-.")
    for ax, kind in zip(axes[:, 0], kinds, strict=True):
        for k, column in enumerate(c for c in metrics.columns if c.startswith(f"{kind}.")):
            for track, rows in enumerate(tracks):
                face = f" {track_name(track)}" if len(tracks) > 1 else ""
                ax.plot(metrics["frame"].to_numpy()[rows], metrics[column].to_numpy()[rows], lw=0.8, color=f"C{k}",
                        ls=styles[track % len(styles)], label=column.split(".", 1)[1] + face)  # fmt: skip
        ax.set_ylabel(kind)
    axes[0, 0].legend(loc="best", fontsize="x-small", ncol=3)
    axes[-1, 0].set_xlabel("frame")
    save_figure(fig, path)


def rotation_control_plot(path: str | os.PathLike, grids: dict[str, np.ndarray], summary: pd.DataFrame) -> None:
    """The rotation-control experiments side by side (sg3pipe.editing.rotation_control): per experiment its grid
    ``[H, W, 3]`` uint8 (a row per base: the base image, then its variants) under its mean changes."""
    fig, axes = plt.subplots(1, len(grids), figsize=(4.2 * len(grids), 4.8), squeeze=False)
    for ax, (experiment, grid) in zip(axes[0], grids.items(), strict=True):
        row = summary.loc[experiment]
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(
            f"{experiment} swapped\nroll {row.landmark_angle_deg:.2f} deg, shift {row.landmark_shift:.3f} w\n"
            f"input roll {row.input_angle_deg:.2f} deg, identity {row.identity:.3f}",
            fontsize="small",
        )
        ax.axis("off")
    save_figure(fig, path)
