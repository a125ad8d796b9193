"""A real Snakemake run of direction finding and the flip table with the shipped synthetic models, small sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from workflow_runs import snakemake

from sg3pipe.io.tables import read_table

ROOT = Path(__file__).resolve().parents[1]


def test_direction_rules_write_official_boundaries_and_the_flip_table(tmp_path):
    overrides = {
        "samples": str(ROOT / "config" / "samples.tsv"),
        "device": "cpu",
        "directions": {"samples": 500, "chunk": 250, "batch": 50},
        "analysis": {"flip_samples": 16},
    }
    (tmp_path / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    folder = "results/directions/synth_generator"
    targets = [f"{folder}/directions.parquet", "results/analysis/flips.parquet"]
    result = snakemake(tmp_path, "--cores", "2", *targets, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    directions, meta = read_table(tmp_path / folder / "directions.parquet")
    assert set(directions["attribute"]) == {"smiling", "glasses", "eyes_closed", "dark_hair", "mouth_open", "long_hair"}
    assert meta["provenance"]["models"]["scorer"]["sha256"]
    boundary = np.load(tmp_path / folder / "dark_hair.npy")  # as the official code loads it
    assert boundary.shape == (1, 128) and boundary.dtype == np.float32
    assert abs(np.linalg.norm(boundary) - 1) < 1e-5
    samples, _ = read_table(tmp_path / folder / "samples.parquet")
    assert len(samples) == 500 and len(list((tmp_path / folder / "samples.chunks").glob("chunk-*.parquet"))) == 2
    flips, _ = read_table(tmp_path / "results" / "analysis" / "flips.parquet")
    assert len(flips) == 18  # six attributes in W, conditional W (config directions.conditional) and S
    # The shipped generator draws hair: its dark-hair directions flip the dark-hair decision.
    for source in ("fitted", "conditional"):
        w_dark = flips[(flips["space"] == "w") & (flips["source"] == source) & (flips["direction"] == "dark_hair")]
        assert w_dark.iloc[0]["dark_hair"] >= 0.75, flips
    assert (tmp_path / "results" / "analysis" / "flips.txt").read_text().startswith("space w")
    # StyleCLIP asked for without its CLIP file: the directions job fails with one message naming the file and the
    # config key, and leaves no directions table that looks complete.
    texts = {"smile_text": ["a face", "a smiling face"]}
    overrides["directions"]["styleclip"] = {"clip": str(tmp_path / "ViT-B-32.pt"), "texts": texts}
    (tmp_path / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    result = snakemake(tmp_path, "--cores", "2", f"{folder}/directions.parquet", timeout=300)
    assert result.returncode != 0
    log = (tmp_path / "logs" / "directions" / "directions.log").read_text()
    assert "ViT-B-32.pt not found" in log and "directions.styleclip" in log, log[-2000:]
    assert not (tmp_path / folder / "directions.parquet").exists()
