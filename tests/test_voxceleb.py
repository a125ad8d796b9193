"""Manifests from VoxCeleb trees (sg3pipe.voxceleb, `sg3pipe manifest`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sg3pipe.cli import main
from sg3pipe.faces.tracking import read_face_track
from sg3pipe.manifest import load_manifest
from sg3pipe.voxceleb import build_manifest

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "synth_a.mp4"  # 256 x 256


def voxceleb2(root: Path, identities: int, clips: int, segments: int) -> None:
    for i in range(identities):
        for c in range(clips):
            folder = root / f"id{i:05d}" / f"clip-{c}_x"
            folder.mkdir(parents=True)
            for s in range(segments):
                (folder / f"{s + 1:05d}.mp4").write_bytes(b"")


def test_voxceleb2_tree_with_a_seeded_subset(tmp_path):
    voxceleb2(tmp_path / "vox", identities=5, clips=4, segments=2)
    out = tmp_path / "samples.tsv"
    assert main([
        "manifest", str(tmp_path / "vox"), "--out", str(out), "--identities", "2", "--clips-per-identity", "3",
        "--seed", "7",
    ]) == 0  # fmt: skip
    table = load_manifest(out)  # the workflow's own reader validates it
    assert len(table) == 2 * 3 * 2 and table["id"].is_unique
    assert table["id"].iloc[0].startswith("id000") and table["path"].str.endswith(".mp4").all()
    assert table["id"].str.slice(0, 7).nunique() == 2
    again = build_manifest(tmp_path / "vox", tmp_path / "again.tsv", identities=2, clips_per_identity=3, seed=7)
    assert list(again["id"]) == list(table["id"])  # same seed, same subset
    others = [build_manifest(tmp_path / "vox", tmp_path / "o.tsv", None, 2, 3, seed) for seed in range(8, 16)]
    assert any(list(other["id"]) != list(table["id"]) for other in others)  # the draw depends on the seed


def test_voxceleb1_tracks_become_clips_with_face_tracks_in_pixels(tmp_path):
    track = tmp_path / "vox1" / "id10001" / "1zcIwhmdeo4" / "00001.txt"
    track.parent.mkdir(parents=True)
    track.write_text(
        "Identity  : \tid10001\nReference : \t1zcIwhmdeo4\nOffset    : \t1\nFV Conf   : \t16.647\t(1)\n"
        "ASD Conf  : \t4.465\n\nFRAME \tX \tY \tW \tH \n000050 \t0.250 \t0.125 \t0.500 \t0.500 \n"
        "000051 \t0.254 \t0.125 \t0.500 \t0.500 \n000074 \t0.260 \t0.130 \t0.500 \t0.500 \n"
    )
    (tmp_path / "videos").mkdir()
    shutil.copy(CLIP, tmp_path / "videos" / "1zcIwhmdeo4.mp4")
    out = tmp_path / "samples.tsv"
    build_manifest(tmp_path / "vox1", out, videos=tmp_path / "videos")
    row = load_manifest(out).iloc[0]
    assert row["id"] == "id10001_1zcIwhmdeo4_00001" and row["path"].endswith("1zcIwhmdeo4.mp4")
    assert row["start_s"] == pytest.approx(2.0) and row["end_s"] == pytest.approx(3.0)
    boxes = read_face_track(row["face_track"])
    assert sorted(boxes) == [50, 51, 74]
    np.testing.assert_allclose(boxes[50], [64, 32, 192, 160])  # fractions of the 256-px frame -> pixels


def test_missing_tree_and_missing_videos_are_clear(tmp_path, capsys):
    assert main(["manifest", str(tmp_path), "--out", str(tmp_path / "m.tsv")]) == 1
    assert "no id*/CLIP/*.mp4 or *.txt files" in capsys.readouterr().err
    track = tmp_path / "id1" / "clip" / "00001.txt"
    track.parent.mkdir(parents=True)
    track.write_text("FRAME X Y W H\n1 0.1 0.1 0.5 0.5\n")
    assert main(["manifest", str(tmp_path), "--out", str(tmp_path / "m.tsv")]) == 0
    assert "left out 1 face tracks whose video is not in --videos" in capsys.readouterr().out
