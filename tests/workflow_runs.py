"""Real Snakemake runs of the repository's workflow, shared by the workflow tests: the command line, the short
sample run (synth_a's first 14 frames, 7 of them unusable, through the whole chain with small settings) and the
comparison of two runs' Parquet tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sg3pipe.io.tables import column_array, read_table, write_table

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "synth_a.mp4"
FRAMES = 14
LOST = range(4, 11)  # frames without landmarks: a gap longer than align.max_gap, so they are unusable
TARGETS = ("results/summary.parquet", "results/failures.parquet", "results/generator/samples.png",
           "results/analysis/flips.parquet", "results/analysis/dci.parquet",
           "results/analysis/rotation_control.parquet")  # fmt: skip
SAMPLE_EDITS = [
    {"name": "smile", "direction": "smiling", "space": "w", "factors": [-2.0, 2.0], "unit": "std"},
    {"name": "hair_s", "direction": "dark_hair.s", "space": "s", "factors": [3.0], "unit": "std"},
]
TIMING_COLUMNS = {"render_fps"}  # columns that measure the machine, not the data


def workflow_command(folder: Path, *args: str, configs: tuple[Path, ...] = ()) -> list[str]:
    """The command that runs the workflow in ``folder`` with the repository's config, then ``configs``, then
    ``folder/overrides.yaml``, and no site profile (``args`` may name one with ``--profile``)."""
    return [
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(folder),
        "--workflow-profile", "none", *args,
        "--configfile", str(ROOT / "config" / "config.yaml"), *map(str, configs), str(folder / "overrides.yaml"),
    ]  # fmt: skip


def snakemake(
    folder: Path, *args: str, env: dict | None = None, timeout: float = 1500, configs: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess:
    """Run :func:`workflow_command` and wait for it."""
    command = workflow_command(folder, *args, configs=configs)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def prepare_sample_run(folder: Path, other_videos: dict[str, Path] | None = None) -> Path:
    """Write the sample run's inputs into ``folder``: a landmarks table for synth_a's first 14 frames without
    frames 4-10, a manifest (synth_a, its truth, and ``other_videos`` ``{id: path}`` at 14 frames) and small
    settings: 200 direction samples, two W edits and one S edit, 30 PTI steps. Returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    truth, _ = read_table(ROOT / "samples" / "synth_a.truth.parquet")
    keep = (truth["frame"] < FRAMES) & ~truth["frame"].isin(LOST)
    landmarks = column_array(truth, "landmarks", (136,))[keep.to_numpy()]
    write_table(folder / "landmarks.parquet", {"frame": truth["frame"][keep].to_numpy(), "landmarks": landmarks}, {})
    rows = [f"synth_a\t{CLIP}\t{FRAMES}\t{folder / 'landmarks.parquet'}\t{ROOT / 'samples' / 'synth_a.truth.parquet'}"]
    rows += [f"{video}\t{path}\t{FRAMES}\t\t" for video, path in (other_videos or {}).items()]
    (folder / "manifest.tsv").write_text("id\tpath\tmax_frames\tlandmarks\ttruth\n" + "\n".join(rows) + "\n")
    overrides = {
        "samples": str(folder / "manifest.tsv"),
        "device": "cpu",
        "directions": {"samples": 200, "chunk": 200, "batch": 50, "ratio": 0.1},
        "edits": SAMPLE_EDITS,
        "pti": {"steps": 30, "checkpoint_every": 10},
        "render": {"batch": 5},
        "analysis": {"flip_samples": 32, "rotation_samples": 2, "rotation_variants": 2},
    }
    (folder / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return folder


def tables(results: Path) -> dict[str, pd.DataFrame]:
    """Every Parquet table under ``results``, by relative path, without the columns that time the machine."""
    found = {}
    for path in sorted(results.rglob("*.parquet")):
        table, _ = read_table(path)
        found[str(path.relative_to(results))] = table.drop(columns=[c for c in table if c in TIMING_COLUMNS])
    return found


def assert_same_tables(expected: dict[str, pd.DataFrame], actual: dict[str, pd.DataFrame]) -> None:
    """The tables of ``expected`` are in ``actual`` with the same columns, rows and values (NaN equal to NaN)."""
    missing = sorted(set(expected) - set(actual))
    assert not missing, f"tables missing from the second run: {missing}"
    for name, table in expected.items():
        other = actual[name]
        assert list(table.columns) == list(other.columns), name
        assert len(table) == len(other), name
        for column in table:
            a, b = table[column].to_numpy(), other[column].to_numpy()
            if a.dtype == object:  # list cells (landmarks, latents) and strings
                same = all(_same_cell(x, y) for x, y in zip(a, b, strict=True))
            else:
                same = np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
            assert same, f"{name}: column {column!r} differs"


def _same_cell(x, y) -> bool:
    """Two cells of an object column (arrays or strings) hold the same values, NaN equal to NaN."""
    x, y = np.asarray(x), np.asarray(y)
    return np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
