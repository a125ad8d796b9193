"""A real Snakemake run of rule `encode` (frames -> latents) on a short clip with tiny models, and its errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from generators import make_generator
from workflow_runs import snakemake as workflow_snakemake

from sg3pipe.frames import USABLE
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.networks.encoders import BackboneEncoder, official_config
from sg3pipe.networks.loading import save_generator
from sg3pipe.networks.restyle import ReStyleEncoder, load_encoder, save_encoder
from sg3pipe.pixels import to_tensor
from sg3pipe.provenance import file_sha256
from sg3pipe.video.decode import read_all_frames

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "synth_a.mp4"
FRAMES = 10
TINY = {"input_size": 32, "stage_units": [1, 2, 1, 1], "stage_widths": [8, 16, 24, 32], "se_reduction": 4}


def snakemake(workdir: Path, overrides: dict, *args: str) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with ``overrides`` on top of its config (one core)."""
    (workdir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return workflow_snakemake(workdir, "--cores", "1", *args, timeout=300)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """Tiny models, and a manifest of the synth_a clip (10 frames) whose landmarks table lacks frames 2..8
    (a gap longer than align.max_gap, so they are unusable): the config overrides of a run."""
    folder = tmp_path_factory.mktemp("inputs")
    G = make_generator("R", resolution=32)
    torch.manual_seed(0)
    encoder = BackboneEncoder(**{**official_config("ProgressiveBackboneEncoder", w_dim=G.w_dim), **TINY}).eval()
    save_encoder(ReStyleEncoder(encoder, G, G.mapping.w_avg.clone()).eval(), folder / "enc.safetensors")
    save_generator(G, folder / "g.safetensors")
    truth, _ = read_table(ROOT / "samples" / "synth_a.truth.parquet")
    keep = truth["frame"].isin([0, 1, 9])
    landmarks = column_array(truth, "landmarks", (136,))[keep.to_numpy()]
    write_table(folder / "landmarks.parquet", {"frame": truth["frame"][keep].to_numpy(), "landmarks": landmarks}, {})
    (folder / "manifest.tsv").write_text(f"id\tpath\tmax_frames\tlandmarks\nsynth_a\t{CLIP}\t{FRAMES}\t"
                                         f"{folder / 'landmarks.parquet'}\n")  # fmt: skip
    return {
        "samples": str(folder / "manifest.tsv"),
        "device": "cpu",
        "models": {"generator": str(folder / "g.safetensors"), "encoder": str(folder / "enc.safetensors")},
        "landmarks": {"backend": "table"},
        "align": {"size": 32},
        "encode": {"batch_size": 4, "n_iters": 2, "render_with_transform": True},
    }


@pytest.mark.slow
def test_encode_rule_inverts_every_usable_frame_and_keeps_every_row(tmp_path, setup):
    # --notemp: the test reads aligned.mkv, a temporary file Snakemake deletes once encode has read it.
    result = snakemake(tmp_path, setup, "--notemp", "results/synth_a/latents.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    frames, _ = read_table(tmp_path / "results" / "synth_a" / "frames.parquet")
    table, meta = read_table(tmp_path / "results" / "synth_a" / "latents.parquet")
    status = frames["status"].to_numpy()
    assert list(status) == ["ok", "ok"] + ["unusable"] * 7 + ["ok"]
    assert list(table["status"]) == list(status) and list(table["frame"]) == list(frames["frame"])
    usable = np.isin(status, USABLE)
    assert list(table["inverted"]) == list(usable)
    latents = column_array(table, "latent", meta["shapes"]["latent"])
    assert np.isnan(latents[~usable]).all()
    assert table["crop_l2"][usable].notna().all() and table["lpips"].isna().all()

    # The rule's batches give what one direct call of the encoder gives on the aligned crops.
    aligned = read_all_frames(tmp_path / "results" / "synth_a" / "aligned.mkv")
    ws, _ = load_encoder(setup["models"]["encoder"]).invert(to_tensor(aligned[usable]), n_iters=2)
    np.testing.assert_allclose(latents[usable], ws.numpy(), atol=1e-5)
    assert meta["provenance"]["models"]["encoder"]["sha256"] == file_sha256(setup["models"]["encoder"])
    assert (tmp_path / "logs" / "benchmarks" / "encode" / "synth_a.tsv").exists()
    assert "inverted 3 of 10 frames" in (tmp_path / "logs" / "encode" / "synth_a.log").read_text()


def test_encode_without_an_encoder_is_one_clear_error_and_the_projector_needs_only_the_generator(tmp_path, setup):
    no_encoder = {**setup, "models": {**setup["models"], "encoder": None}}
    result = snakemake(tmp_path, no_encoder, "-n", "results/synth_a/latents.parquet")
    assert result.returncode != 0
    message = result.stdout + result.stderr  # a dry run reports on stdout
    assert "models.encoder is not set" in message and "method: projector" in message
    projector = {**no_encoder, "encode": {**setup["encode"], "method": "projector"}}
    result = snakemake(tmp_path, projector, "-n", "results/synth_a/latents.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rule encode" in result.stdout and setup["models"]["generator"] in result.stdout
