"""A real Snakemake run of rule `frames`: one good video, one broken, --keep-going (issue 4)."""

import subprocess
import sys
from pathlib import Path

import pytest

from sg3pipe.io.tables import read_table
from sg3pipe.video.decode import read_all_frames

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "Snakefile"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with its default config (and no site profile)."""
    command = [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir),
        "--workflow-profile", "none", "--cores", "2", "--configfile", str(ROOT / "config" / "config.yaml"), *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_frames_rule_processes_good_videos_and_fails_only_the_broken_one(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    (tmp_path / "broken.mp4").write_bytes(b"")
    manifest.write_text(
        f"id\tpath\tmax_frames\nastronaut\t{ROOT / 'samples' / 'astronaut.mp4'}\t40\nbroken\tbroken.mp4\t\n"
    )
    targets = ["results/astronaut/frames.parquet", "results/broken/frames.parquet"]
    result = snakemake(tmp_path, "--keep-going", *targets, "--config", f"samples={manifest}")
    assert result.returncode != 0, result.stderr[-3000:]
    table, meta = read_table(tmp_path / "results" / "astronaut" / "frames.parquet")
    assert len(table) == 40 and (table["status"] == "ok").all()
    assert meta["provenance"]["config"]["align"]["size"] == 64
    for name in ("aligned", "crops"):
        frames = read_all_frames(tmp_path / "results" / "astronaut" / f"{name}.mkv")
        assert frames.shape == (40, 64, 64, 3)
    assert (tmp_path / "benchmarks" / "out" / "frames" / "astronaut.tsv").exists()
    assert not (tmp_path / "results" / "broken").exists() or not any((tmp_path / "results" / "broken").iterdir())
    log = (tmp_path / "logs" / "frames" / "broken.log").read_text()
    assert "broken.mp4: the file is empty (0 bytes)" in log
