"""The run's summary table: one row per video and face track from the summaries in ``metrics.parquet``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from sg3pipe.io.tables import read_table, write_frame
from sg3pipe.tracks import track_rows


def flatten(record: dict, prefix: str = "") -> dict:
    """Nested dicts as one level, keys joined with dots: ``{"a": {"b": 1}} -> {"a.b": 1}``."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def summary_frame(metrics_paths: list[str | os.PathLike]) -> pd.DataFrame:
    """One row per face track of each ``results/{video}/metrics.parquet`` (one per video with one face):
    ``video`` (the folder name), ``track``, the flattened per-track summary (frames, render frames/s, jitter
    before/after, PTI loss, TL-ID/TG-ID per edit) and the mean of every per-frame metric column over the track's
    usable frames."""
    rows = []
    for path in metrics_paths:
        table, meta = read_table(path)
        usable = table["usable"].to_numpy().astype(bool)
        metric_columns = [c for c in table.columns if c not in ("frame", "track", "status", "usable")]
        per_track = zip(track_rows(table["track"]), meta["summary"], strict=True)
        for track, (rows_of_track, summary) in enumerate(per_track):
            use = rows_of_track[usable[rows_of_track]]
            means = {f"mean.{c}": float(np.nanmean(table[c].to_numpy()[use])) if len(use) else float("nan")
                     for c in metric_columns}  # fmt: skip
            rows.append({"video": Path(path).parent.name, "track": track, **flatten(summary), **means})
    return pd.DataFrame(rows)


def write_summary(metrics_paths: list[str | os.PathLike], out_path: str | os.PathLike) -> pd.DataFrame:
    """Write :func:`summary_frame` to ``out_path`` (Parquet); returns it."""
    frame = summary_frame(metrics_paths)
    write_frame(out_path, frame, {"videos": len(frame)})
    return frame
