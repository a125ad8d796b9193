"""The workflow's main job on a generator: dry run of `all`, and a real run of `generator_preview`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from generators import make_generator
from PIL import Image
from workflow_runs import snakemake as workflow_snakemake

from sg3pipe.networks.loading import save_generator
from sg3pipe.provenance import file_sha256

ROOT = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, generator: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with ``generator`` as `models.generator`."""
    overrides = workdir / "overrides.yaml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "models": {"generator": str(generator)},
                "encode": {"method": "projector"},  # the bundled encoder inverts into the bundled generator only
                "samples": str(ROOT / "config" / "samples.tsv"),
                "preview": {"seeds": 4, "truncation_psi": 0.7, "strip_steps": 3},
            }
        )
    )
    return workflow_snakemake(workdir, "--cores", "2", *args, timeout=300)


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "g.safetensors"
    save_generator(make_generator("R", resolution=32), path)
    return path


def test_dry_run_of_all(tmp_path, generator_file):
    result = snakemake(tmp_path, generator_file, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "generator_preview" in result.stdout
    assert result.stdout.count("rule frames:") == 3  # one job per video of the bundled manifest
    assert result.stdout.count("rule encode:") == 3


@pytest.mark.slow
def test_generator_preview_renders_the_grid_and_strips_with_provenance(tmp_path, generator_file):
    result = snakemake(tmp_path, generator_file, "generator_preview")
    assert result.returncode == 0, result.stderr[-3000:]
    grid = Image.open(tmp_path / "results" / "generator" / "samples.png")
    strip = Image.open(tmp_path / "results" / "generator" / "transform_strip.png")
    assert grid.size == (2 * 32, 2 * 32) and strip.size == (3 * 32, 3 * 32)
    record = json.loads(strip.text["sg3pipe"])
    assert record["models"]["generator"]["sha256"] == file_sha256(generator_file)
    assert record["config"]["preview"]["strip_steps"] == 3


def test_missing_generator_is_one_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "g.pkl"
    result = snakemake(tmp_path, missing, "generator_preview")
    assert result.returncode != 0  # refused when the workflow is parsed: align.size follows the generator
    message = result.stdout + result.stderr
    assert str(missing) in message and "does not exist" in message and "models.generator" in message
