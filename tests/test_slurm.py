"""The workflow through a real SLURM scheduler: a one-node cluster on localhost with accounting
(tests/slurm_cluster.py), `snakemake --profile profiles/slurm` with the site values a user sets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from slurm_cluster import ACCOUNT, PARTITION, local_slurm
from workflow_runs import ROOT, assert_same_tables, prepare_sample_run, snakemake, tables

from sg3pipe.io.tables import read_table

# The sample run's jobs for one video and the model-level ones they need, each a SLURM job.
CHAIN = ["frames", "encode", "direction_samples", "directions", "flip_table", "render"]


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


@pytest.mark.slow
def test_the_sample_workflow_runs_through_slurm_like_locally_and_a_failed_job_is_reported(
    cluster, sample_run, tmp_path
):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    slurm = prepare_sample_run(tmp_path / "slurm", other_videos={"broken": tmp_path / "broken.mp4"})
    targets = ["results/synth_a/metrics.parquet", "results/broken/metrics.parquet", "results/analysis/flips.parquet"]
    profile = site_profile(tmp_path / "profile", gpus=False)
    result = snakemake(slurm, "--profile", str(profile), "--verbose", *targets, env=cluster.env())
    assert result.returncode != 0, result.stderr[-3000:]  # the broken video's job failed ...
    log = result.stdout + result.stderr
    failed = r"Error in rule frames:\n.*SLURM status is: 'FAILED'.*\n(.*\n){0,3}.*output: results/broken/frames.parquet"
    assert re.search(failed, log), log[-4000:]
    failures, _ = read_table(slurm / "results" / "failures.parquet")  # the job's own reason, from its log folder
    assert list(failures["video"]) == ["broken"] and "broken.mp4" in failures["message"][0]
    assert (slurm / "results" / "synth_a" / "metrics.parquet").exists(), log[-4000:]  # ... the others finished

    # Every job went through SLURM: sbatch submitted it and accounting has its end state.
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == len(CHAIN) + 1, log[-4000:]  # the chain, and the broken video's frames job
    states = cluster.run("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(submitted)).stdout
    by_state = [line.split("|")[1] for line in states.strip().splitlines()]
    assert sorted(by_state) == ["COMPLETED"] * len(CHAIN) + ["FAILED"], states

    # The same tables as the local sample run (the data, not the file bytes), at every stage of the chain.
    there = tables(slurm / "results")
    here = {name: table for name, table in tables(sample_run).items() if name in there and name != "failures.parquet"}
    assert {"synth_a/frames.parquet", "synth_a/latents.parquet", "synth_a/edits/smile.parquet",
            "synth_a/smoothed.parquet", "synth_a/pti/loss.parquet", "synth_a/metrics.parquet",
            "directions/synth_generator/directions.parquet", "analysis/flips.parquet"} <= set(here)  # fmt: skip
    assert_same_tables(here, there)


@pytest.mark.slow
def test_gpu_rules_ask_sbatch_for_a_gpu_with_their_memory_and_runtime(cluster, tmp_path):
    # The profile's GPU rules reach sbatch with --gpus=1; this node has no GPU, so SLURM rejects the submission
    # and the executor reports the call it made (memory and runtime from the profile's set-resources).
    folder = prepare_sample_run(tmp_path / "gpu")
    profile = site_profile(tmp_path / "profile", gpus=True)
    target = "results/generator/samples.png"
    result = snakemake(folder, "--profile", str(profile), target, env=cluster.env())
    log = result.stdout + result.stderr
    assert result.returncode != 0
    call = re.search(r"sbatch call:\s*\n\s*(sbatch .*)", log)
    assert call, log[-3000:]
    assert "--gpus=1" in call.group(1) and re.search(r"--mem \d+", call.group(1)) and " -t 30" in call.group(1)
    assert "Invalid generic resource" in log
