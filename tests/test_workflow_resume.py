"""A job killed mid-way leaves nothing that looks complete, and the rerun resumes it: rule render is
SIGKILLed together with Snakemake after the first checkpoint of its pivotal tuning, then the workflow is run
again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from workflow_runs import workflow_command

from sg3pipe.io.tables import read_table

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "synth_a.mp4"


def command(folder: Path, target: str) -> list[str]:
    return workflow_command(folder, "--cores", "2", "--rerun-incomplete", target)


@pytest.mark.slow
def test_pti_killed_after_a_checkpoint_resumes_there_on_the_rerun(tmp_path):
    (tmp_path / "manifest.tsv").write_text(f"id\tpath\tmax_frames\nsynth_a\t{CLIP}\t10\n")
    pti_settings = {"steps": 400, "checkpoint_every": 5}
    overrides = {
        "samples": str(tmp_path / "manifest.tsv"),
        "device": "cpu",
        "pti": pti_settings,
        "metrics": {"identity": False},
    }
    (tmp_path / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    target = "results/synth_a/metrics.parquet"
    checkpoint = tmp_path / "results" / "synth_a" / "pti" / "work" / "checkpoint.pt"
    run = subprocess.Popen(command(tmp_path, target), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert checkpoint.exists() and run.poll() is None, "PTI never wrote a checkpoint"
    time.sleep(2)
    os.killpg(run.pid, signal.SIGKILL)  # Snakemake and the job, with no chance to clean up
    run.wait()
    pti = tmp_path / "results" / "synth_a" / "pti"
    assert not (pti / "generator.safetensors").exists() and not (pti / "loss.parquet").exists()
    assert not list(pti.glob("*.partial-*"))  # no half-written file under a final name or beside it
    assert not (tmp_path / "results" / "synth_a" / "metrics.parquet").exists()

    pti_settings["steps"] = 60  # finish soon after the checkpoint (a run can be shortened or extended)
    (tmp_path / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    unlock = subprocess.run([*command(tmp_path, target), "--unlock"], capture_output=True, text=True)  # as a user
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    result = subprocess.run(command(tmp_path, target), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "logs" / "render" / "synth_a.log").read_text()
    assert "resumed" in log and "at step" in log, log[-2000:]
    losses, meta = read_table(pti / "loss.parquet")
    assert len(losses) == 60 and meta["end_l2"] < meta["start_l2"]
    assert not checkpoint.parent.exists()  # the finished tuning's checkpoint is deleted (pti.keep_checkpoint)
