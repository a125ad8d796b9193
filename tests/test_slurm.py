"""The workflow through a real SLURM scheduler: a one-node cluster on localhost with accounting
(tests/slurm_cluster.py), `snakemake --profile profiles/slurm` with the site values a user sets (issue 16)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from slurm_cluster import ACCOUNT, PARTITION, local_slurm

from sg3pipe.io.tables import read_table

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "synth_a.mp4"
TABLES = ("frames", "latents", "smoothed")  # the per-video chain up to smoothing: frames, encode, smooth jobs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_slurm(tmp_path_factory.mktemp("slurm")) as running:
        yield running


def site_profile(folder: Path, gpus: bool) -> Path:
    """profiles/slurm with this cluster's partition and account, as a site would adapt it; ``gpus=False``
    turns the GPU requests off (this node has none)."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"] = [
        f"slurm_partition={PARTITION}" if item.startswith("slurm_partition=") else
        f"slurm_account={ACCOUNT}" if item.startswith("slurm_account=") else item
        for item in profile["default-resources"]
    ]  # fmt: skip
    if not gpus:
        profile["set-resources"] = {rule: {**values, "gpu": 0} for rule, values in profile["set-resources"].items()}
    profile.update({"latency-wait": 5, "retries": 0})  # a local disk: no NFS delay; a failure stays a failure
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def workdir(folder: Path, videos: dict[str, Path]) -> Path:
    """A run folder with a manifest of ``videos`` (8 frames each) and small settings."""
    folder.mkdir(parents=True)
    (folder / "manifest.tsv").write_text(
        "id\tpath\tmax_frames\n" + "".join(f"{video}\t{path}\t8\n" for video, path in videos.items())
    )
    overrides = {"samples": str(folder / "manifest.tsv"), "device": "cpu", "encode": {"batch_size": 4}}
    (folder / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return folder


def snakemake(folder: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(folder),
        "--workflow-profile", "none",
        "--configfile", str(ROOT / "config" / "config.yaml"), str(folder / "overrides.yaml"), *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=1500)


@pytest.mark.slow
def test_workflow_runs_through_slurm_like_locally_and_a_failed_job_is_reported(cluster, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    videos = {"synth_a": CLIP, "broken": tmp_path / "broken.mp4"}
    targets = [f"results/{video}/smoothed.parquet" for video in videos]
    slurm = workdir(tmp_path / "slurm", videos)
    profile = site_profile(tmp_path / "profile", gpus=False)
    result = snakemake(slurm, cluster.env(), "--profile", str(profile), "--verbose", *targets)
    assert result.returncode != 0, result.stderr[-3000:]  # the broken video's job failed ...
    log = result.stdout + result.stderr
    failed = r"Error in rule frames:\n.*SLURM status is: 'FAILED'.*\n(.*\n){0,3}.*output: results/broken/frames.parquet"
    assert re.search(failed, log), log[-4000:]
    failures, _ = read_table(slurm / "results" / "failures.parquet")  # the job's own reason, from its log folder
    assert list(failures["video"]) == ["broken"] and "broken.mp4" in failures["message"][0]
    assert (slurm / "results" / "synth_a" / "smoothed.parquet").exists(), log[-4000:]  # ... the other finished

    # The jobs went through SLURM: sbatch submitted them and accounting has their end states.
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == 4, log[-4000:]  # frames x2, encode, smooth
    states = cluster.run("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(submitted)).stdout
    by_state = [line.split("|")[1] for line in states.strip().splitlines()]
    assert sorted(by_state) == ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"], states

    # Same tables as a local run of the same targets (the data, not the file bytes).
    local = workdir(tmp_path / "local", {"synth_a": CLIP})
    result = snakemake(local, cluster.env(), "--cores", "2", targets[0])
    assert result.returncode == 0, result.stderr[-3000:]
    for name in TABLES:
        here, _ = read_table(local / "results" / "synth_a" / f"{name}.parquet")
        there, _ = read_table(slurm / "results" / "synth_a" / f"{name}.parquet")
        assert here.equals(there), name


@pytest.mark.slow
def test_gpu_rules_ask_sbatch_for_a_gpu_with_their_memory_and_runtime(cluster, tmp_path):
    # The profile's GPU rules reach sbatch with --gpus=1; this node has no GPU, so SLURM rejects the submission
    # and the executor reports the call it made (memory and runtime from the profile's set-resources).
    folder = workdir(tmp_path / "gpu", {"synth_a": CLIP})
    profile = site_profile(tmp_path / "profile", gpus=True)
    target = "results/generator/samples.png"
    result = snakemake(folder, cluster.env(), "--profile", str(profile), target)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    call = re.search(r"sbatch call:\s*\n\s*(sbatch .*)", log)
    assert call, log[-3000:]
    assert "--gpus=1" in call.group(1) and re.search(r"--mem \d+", call.group(1)) and " -t 30" in call.group(1)
    assert "Invalid generic resource" in log
