"""A real Snakemake run of rule `frames`: one good video, an empty file and a clip without a face, --keep-going,
the run's failures table, and a rerun after the input is fixed."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import yaml
from PIL import Image
from workflow_runs import snakemake as workflow_snakemake

from sg3pipe.io.tables import column_array, read_table
from sg3pipe.video.decode import read_all_frames
from sg3pipe.video.writer import write_video

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
def test_frames_rule_processes_good_videos_and_fails_only_the_broken_ones(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    (tmp_path / "broken.mp4").write_bytes(b"")
    write_video(tmp_path / "noface.mp4", np.full((6, 96, 96, 3), 128, np.uint8), fps=25)  # a grey clip: no face
    manifest.write_text(
        f"id\tpath\tmax_frames\nastronaut\t{ROOT / 'samples' / 'astronaut.mp4'}\t40\nbroken\tbroken.mp4\t\n"
        "noface\tnoface.mp4\t\n"
    )
    targets = [f"results/{video}/frames.parquet" for video in ("astronaut", "broken", "noface")]
    result = snakemake(tmp_path, "--keep-going", *targets, "--config", f"samples={manifest}")
    assert result.returncode != 0, result.stderr[-3000:]
    table, meta = read_table(tmp_path / "results" / "astronaut" / "frames.parquet")
    assert len(table) == 40 and (table["status"] == "ok").all()
    assert meta["provenance"]["config"]["align"]["size"] == 64
    for name in ("aligned", "crops"):
        frames = read_all_frames(tmp_path / "results" / "astronaut" / f"{name}.mkv")
        assert frames.shape == (40, 64, 64, 3)
    assert (tmp_path / "logs" / "benchmarks" / "frames" / "astronaut.tsv").exists()
    for video in ("broken", "noface"):
        folder = tmp_path / "results" / video
        assert not folder.exists() or not any(folder.iterdir())
    log = (tmp_path / "logs" / "frames" / "broken.log").read_text()
    assert "broken.mp4: the file is empty (0 bytes)" in log

    # The run's failures table names each failed job, its video and the reason; the stderr ends with the same.
    failures, _ = read_table(tmp_path / "results" / "failures.parquet")
    assert list(failures["video"]) == ["broken", "noface"] and set(failures["rule"]) == {"frames"}
    assert "the file is empty (0 bytes)" in failures["message"][0]
    assert failures["error"][1] == "NoUsableFaceError" and "noface.mp4" in failures["message"][1]
    assert "2 failed job(s)" in result.stderr
    page = (tmp_path / "results" / "failures.html").read_text()  # the report's page, refreshed at the run's end
    assert "noface.mp4" in page and "the file is empty (0 bytes)" in page

    # Fixed input: the rerun redoes only that video's job, and its failure leaves the table.
    good = tmp_path / "results" / "astronaut" / "frames.parquet"
    before = good.stat().st_mtime_ns
    shutil.copy(ROOT / "samples" / "synth_a.mp4", tmp_path / "broken.mp4")
    result = snakemake(tmp_path, "--keep-going", *targets, "--config", f"samples={manifest}")
    assert result.returncode != 0, result.stderr[-3000:]  # noface still fails
    assert good.stat().st_mtime_ns == before
    assert len(read_table(tmp_path / "results" / "broken" / "frames.parquet")[0]) == 100
    failures, _ = read_table(tmp_path / "results" / "failures.parquet")
    assert list(failures["video"]) == ["noface"]


@pytest.mark.slow
def test_a_still_image_goes_through_the_whole_chain_and_its_edits_are_written_as_images(tmp_path):
    image = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(image)
    (tmp_path / "manifest.tsv").write_text(f"id\tpath\nphoto\t{image}\n")
    overrides = {
        "samples": str(tmp_path / "manifest.tsv"),
        "device": "cpu",
        "directions": {"samples": 200, "chunk": 200, "batch": 50, "ratio": 0.1},
        "edits": [{"name": "hair", "direction": "dark_hair", "space": "w", "factors": [3.0], "unit": "std"}],
        "pti": {"steps": 4, "checkpoint_every": 2},
    }
    (tmp_path / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    result = workflow_snakemake(tmp_path, "--cores", "2", "results/photo/metrics.parquet", timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    videos = tmp_path / "results" / "photo" / "videos"
    assert len(read_table(tmp_path / "results" / "photo" / "frames.parquet")[0]) == 1
    pasted = np.asarray(Image.open(videos / "pasteback-hair-3.png")).astype(int)
    assert pasted.shape == (512, 512, 3)  # the photo's size, the edit pasted in
    frames, _ = read_table(tmp_path / "results" / "photo" / "frames.parquet")
    landmarks = column_array(frames, "landmarks", (68, 2))[0]
    (x0, y0), (x1, y1) = landmarks.min(axis=0) - 60, landmarks.max(axis=0) + 60  # the face and the mask's margin
    face = np.zeros((512, 512), bool)
    face[max(int(y0), 0) : int(y1), max(int(x0), 0) : int(x1)] = True
    changed = np.abs(pasted - skimage.data.astronaut()).max(axis=2)
    assert (changed[~face] == 0).all()  # away from the face: the photo's own pixels, exactly
    assert (changed[face] > 8).sum() > 2000  # the face: the render
    assert np.asarray(Image.open(videos / "pti.png")).shape == (64, 64, 3)
    # The temporary intermediates are gone once rendered; the tables stay.
    photo = tmp_path / "results" / "photo"
    assert not any((photo / name).exists() for name in ("aligned.mkv", "crops.mkv", "pti/generator.safetensors"))
    assert (photo / "latents.parquet").exists() and (photo / "pti" / "loss.parquet").exists()
