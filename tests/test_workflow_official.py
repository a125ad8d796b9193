"""The real path: the whole workflow on official-format model files at a second resolution and a real-photo clip
with an audio track, as a user with NVIDIA's weights runs it.

Built here, with random weights and tiny channels so that it runs on two CPU cores: an NVIDIA network pickle of a
128-px StyleGAN3-R generator, an official ReStyle-e4e checkpoint whose decoder is that generator, and an AnyCost
attribute predictor (a torchvision ResNet-50 with 40 logit pairs, the official layout). The config is the shipped
``config/official.yaml`` with only the model paths, the manifest and the sample counts changed. The clip is
480x384 at 30 frames/s: scikit-image's astronaut photo under a moving camera, with an AAC track that ends 20 ms
before the video (as many real files do).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision
import yaml
from generators import make_generator
from official_encoder_format import write_official_checkpoint
from official_format import write_official_pickle
from skimage import data
from test_encoders import make_encoder
from workflow_runs import snakemake

from sg3pipe.editing.classifiers import CELEBA_ATTRIBUTES
from sg3pipe.io.tables import read_table
from sg3pipe.video.decode import read_all_frames
from sg3pipe.video.ffmpeg import ffmpeg_exe
from sg3pipe.video.probe import probe_video
from sg3pipe.video.writer import write_video

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_CONFIG = ROOT / "config" / "official.yaml"
RESOLUTION = 128
WIDTH, HEIGHT, FPS, FRAMES = 480, 384, 30, 36
AUDIO_SHORT_S = 0.02  # the audio track ends this much before the video


def make_clip(path: Path) -> Path:
    """The astronaut photo panned and turned by a steady camera, 480x384 at 30 frames/s, with an AAC sine track
    that ends ``AUDIO_SHORT_S`` before the last frame."""
    photo = data.astronaut()
    frames = []
    for k in range(FRAMES):
        turn = cv2.getRotationMatrix2D((256.0, 200.0), 0.2 * k, 1.0)
        moved = cv2.warpAffine(photo, turn, (512, 512), borderMode=cv2.BORDER_REFLECT_101)
        left = k * (512 - WIDTH) // FRAMES  # a steady pan
        frames.append(moved[:HEIGHT, left : left + WIDTH])
    silent = path.with_name("silent.mp4")
    write_video(silent, np.stack(frames), FPS)
    audio = f"sine=frequency=330:sample_rate=44100:duration={FRAMES / FPS - AUDIO_SHORT_S}"
    args = ["-i", str(silent), "-f", "lavfi", "-i", audio, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac"]
    result = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", *args, str(path)], capture_output=True
    )
    assert result.returncode == 0, result.stderr
    return path


def make_anycost(path: Path) -> Path:
    """A random AnyCost attribute predictor in its official layout: ``{"state_dict": ResNet-50 with fc 2048 -> 80}``,
    batch-norm statistics randomised so that its scores vary from image to image."""
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None)
    net.fc = torch.nn.Linear(2048, 80)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.uniform_(0.5, 1.5)
    torch.save({"state_dict": net.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def official_run(tmp_path_factory) -> Path:
    """The workflow run to the summary, then its report, in a fresh folder; returns the folder."""
    folder = tmp_path_factory.mktemp("official")
    G = make_generator("R", resolution=RESOLUTION, seed=3, w_dim=64)  # W wider than the 40 attributes' normals
    write_official_pickle(folder / "stylegan3-r-tiny-128x128.pkl", G)
    encoder = make_encoder("ProgressiveBackboneEncoder", seed=3, w_dim=G.w_dim, n_styles=G.num_ws)
    write_official_checkpoint(
        folder / "restyle_e4e_tiny.pt", encoder, G, G.mapping.w_avg.clone(), "ProgressiveBackboneEncoder"
    )
    make_anycost(folder / "attribute_predictor.pt")
    make_clip(folder / "interview.mp4")
    (folder / "manifest.tsv").write_text(f"id\tpath\ninterview\t{folder / 'interview.mp4'}\n")
    overrides = {
        "samples": str(folder / "manifest.tsv"),
        "device": "cpu",
        "models": {
            "generator": str(folder / "stylegan3-r-tiny-128x128.pkl"),
            "encoder": str(folder / "restyle_e4e_tiny.pt"),
            "scorer": {"kind": "anycost", "path": str(folder / "attribute_predictor.pt")},
        },
        "directions": {"samples": 100, "chunk": 50, "batch": 25, "ratio": 0.1},
        "pti": {"steps": 6, "checkpoint_every": 3},
        "render": {"batch": 12},
    }
    (folder / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    target = "results/summary.parquet"
    result = snakemake(folder, "--cores", "2", target, configs=(OFFICIAL_CONFIG,))
    assert result.returncode == 0, result.stderr[-4000:]
    report = snakemake(folder, "--report", str(folder / "report.html"), target, configs=(OFFICIAL_CONFIG,))
    assert report.returncode == 0, report.stderr[-4000:]
    return folder


def audio_stream_count(path: Path) -> int:
    banner = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return len(re.findall(r"Stream #\S+: Audio:", banner))


@pytest.mark.slow
def test_official_files_run_the_whole_chain_and_every_output_keeps_the_source_frames(official_run):
    results = official_run / "results" / "interview"
    source = probe_video(official_run / "interview.mp4")
    assert (source.n_frames, source.width, source.height, source.has_audio) == (FRAMES, WIDTH, HEIGHT, True)
    frames, meta = read_table(results / "frames.parquet")
    assert len(frames) == FRAMES and meta["provenance"]["config"]["align"]["size"] == RESOLUTION
    latents, _ = read_table(results / "latents.parquet")
    assert len(latents) == FRAMES and latents["inverted"].all()  # the face is found in every frame

    videos = sorted((results / "videos").glob("*.mp4"))
    names = {path.stem for path in videos}
    assert {"reconstruction", "pti", "edit-smile-2", "edit-smile_s--2", "side_by_side"} <= names
    assert {"pasteback-smile-2", "pasteback-smile_s-2", "pasteback-age--2"} <= names
    for path in videos:
        info = probe_video(path)
        assert (len(read_all_frames(path)), info.fps, info.has_audio) == (FRAMES, FPS, True), path.name
        assert audio_stream_count(path) == 1, path.name
        if path.stem.startswith("pasteback-"):
            assert (info.width, info.height) == (WIDTH, HEIGHT), path.name
        elif path.stem in ("reconstruction", "pti") or path.stem.startswith("edit-"):
            assert (info.width, info.height) == (RESOLUTION, RESOLUTION), path.name

    directions, _ = read_table(
        official_run / "results" / "directions" / "stylegan3-r-tiny-128x128" / "directions.parquet"
    )
    fitted = directions[(directions["source"] == "fitted") & (directions["space"] == "w")]
    assert sorted(fitted["attribute"]) == sorted(CELEBA_ATTRIBUTES)
    assert {"Smiling", "Smiling.s", "Smiling.cond", "Young"} <= set(directions["name"])

    log = (official_run / "logs" / "directions" / "samples.log").read_text()
    assert re.search(r"sampling: 100%.*100/100", log), log[-2000:]  # progress of a long model-level job
    report = (official_run / "report.html").read_text(errors="replace")
    assert "interview" in report and "PTI loss" in report
