"""The workflow's shape without running it: the jobs of a dry run, the lint, the formatting, and the directives
every rule must carry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sg3pipe.settings import load_schema, typed_command_line_values

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((ROOT / "rules").glob("*.smk"))
# Directives every rule that runs something must have (rule `all` only gathers).
REQUIRED = ("log:", "benchmark:", "threads:", "resources:", "conda:", "script:")


def snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)


def rule_blocks() -> dict[str, str]:
    """Rule name -> its text, from the rule files (snakefmt layout: a rule ends at the next top-level line)."""
    blocks = {}
    for path in RULE_FILES:
        for match in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", path.read_text(), re.MULTILINE):
            blocks[match.group(1)] = match.group(2)
    return blocks


def test_every_rule_has_log_benchmark_threads_resources_and_conda():
    blocks = rule_blocks()
    assert len(blocks) == sum(text.count("\nrule ") for text in ("\n" + p.read_text() for p in RULE_FILES))
    for name, text in blocks.items():
        missing = [directive for directive in REQUIRED if f"\n    {directive}" not in "\n" + text]
        assert not missing, f"rule {name} lacks {missing}"
        resources = text.split("    resources:\n", 1)[1]
        assert "mem_mb=" in resources and "runtime=" in resources, f"rule {name}: resources need mem_mb and runtime"


def test_lint_finds_nothing():
    result = snakemake("--lint", "--workflow-profile", "none")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_snakefiles_are_formatted_with_snakefmt():
    command = [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_dry_run_of_two_videos_has_one_chain_per_video_and_one_model_level_job_per_rule(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text(f"id\tpath\na\t{ROOT / 'samples' / 'synth_a.mp4'}\nb\t{ROOT / 'samples' / 'synth_b.mp4'}\n")
    result = snakemake(
        "-n", "--quiet", "rules", "--directory", str(tmp_path), "--workflow-profile", "none",
        "--configfile", str(ROOT / "config" / "config.yaml"), "--config", f"samples={manifest}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, re.MULTILINE))
    per_video = {rule: "2" for rule in ("frames", "encode", "render")}
    model_level = {
        rule: "1"
        for rule in ("generator_preview", "direction_samples", "directions", "flip_table", "dci", "rotation_control")
    }
    run_level = {"summary": "1", "failures": "1", "all": "1"}
    assert counts == {**per_video, **model_level, **run_level, "total": str(6 + 6 + 3)}


def test_a_configured_face_parser_is_an_input_of_render_and_its_absence_a_clear_error(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text(f"id\tpath\na\t{ROOT / 'samples' / 'synth_a.mp4'}\n")
    parser = tmp_path / "parser.pt"
    parser.write_bytes(b"")  # the dry run only needs the file to exist
    common = ["-n", "--directory", str(tmp_path), "--workflow-profile", "none", "--configfile",
              str(ROOT / "config" / "config.yaml"), "--config", f"samples={manifest}"]  # fmt: skip
    result = snakemake("results/a/metrics.parquet", *common, f"render={{'face_parser': {{'path': '{parser}'}}}}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    render_job = result.stdout.split("rule render:", 1)[1].split("\n\n", 1)[0]
    assert str(parser) in render_job
    missing = tmp_path / "absent.pt"
    result = snakemake("results/a/metrics.parquet", *common, f"render={{'face_parser': {{'path': '{missing}'}}}}")
    assert result.returncode != 0 and "Missing input files for rule render" in result.stdout + result.stderr
    assert str(missing) in result.stdout + result.stderr


def test_nested_command_line_values_get_the_schema_types(tmp_path):
    # Snakemake reads `--config pti='{keep_generator: true, steps: 5}'` with YAML's base loader, which leaves the
    # scalars as strings; the workflow types them by the schema before validating, so the override works.
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text(f"id\tpath\na\t{ROOT / 'samples' / 'synth_a.mp4'}\n")
    common = ["-n", "--directory", str(tmp_path), "--workflow-profile", "none", "--configfile",
              str(ROOT / "config" / "config.yaml"), "--config", f"samples={manifest}"]  # fmt: skip
    result = snakemake("results/a/metrics.parquet", *common, "pti={keep_generator: true, steps: 5}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # A value of the wrong kind is still the schema's error.
    result = snakemake("results/a/metrics.parquet", *common, "pti={keep_generator: maybe}")
    assert result.returncode != 0 and "keep_generator" in result.stdout + result.stderr


def test_typed_command_line_values_follow_the_schema():
    schema = load_schema(ROOT / "config" / "schemas" / "config.schema.yaml")
    given = {
        "pti": {"keep_generator": "true", "steps": "4", "lr": "1e-3"},
        "encode": {"method": "projector", "lpips_weights": "null"},  # strings where a string is allowed stay
        "render": {"fov_pad": ["1", "2", "0", "0"]},
        "analysis": {"flip_factor": "2"},  # an integer where a number is asked for
        "edits": [{"name": "smile", "factors": ["-2", "2.5"]}],
    }
    typed = typed_command_line_values(given, schema)
    assert typed["pti"] == {"keep_generator": True, "steps": 4, "lr": 1e-3}
    assert typed["encode"] == {"method": "projector", "lpips_weights": "null"}
    assert typed["render"]["fov_pad"] == [1, 2, 0, 0] and typed["analysis"]["flip_factor"] == 2
    assert typed["edits"][0]["factors"] == [-2, 2.5] and typed["edits"][0]["name"] == "smile"
    assert typed_command_line_values({"pti": {"keep_generator": "maybe"}}, schema)["pti"]["keep_generator"] == "maybe"
