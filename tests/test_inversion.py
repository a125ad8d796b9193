"""The inversion stage (sg3pipe.inversion.invert_video): one row per frame, equal to ReStyle's own invert,
reconstruction metrics, both methods, provenance and the errors of mismatched inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from conftest import assert_close_to_scale
from generators import make_generator

from sg3pipe.frames import USABLE
from sg3pipe.inversion import invert_video
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.networks.encoders import BackboneEncoder, official_config
from sg3pipe.networks.loading import save_generator
from sg3pipe.networks.restyle import ReStyleEncoder, load_encoder, save_encoder
from sg3pipe.pixels import to_tensor, to_uint8
from sg3pipe.provenance import file_sha256
from sg3pipe.synth.params import with_values
from sg3pipe.synth.renderer import render, sample_params
from sg3pipe.transforms import make_transform
from sg3pipe.video.decode import read_all_frames
from sg3pipe.video.writer import write_video

RES = 32
STATUS = ["ok", "interpolated", "unusable", "ok", "no_face", "ok"]
# A small encoder of the official e4e structure for 32 x 32 inputs (as tests/test_encoders.py builds them).
TINY = {"input_size": RES, "stage_units": [1, 2, 1, 1], "stage_widths": [8, 16, 24, 32], "se_reduction": 4}
# The stage's batches against one call of invert, as a fraction of each latent row's and each frame's l2's
# magnitude (tests/conftest.py:assert_close_to_scale), the worst measured with oneDNN limited to SSE4.1 and to AVX2,
# and ATen's kernels to plain C++, in brackets: latents [1.1e-7], l2 [1.1e-6].
TOL_LATENTS = 1e-5
TOL_L2 = 2e-5


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny encoder file and the generator file it contains: ``(encoder path, generator path)``."""
    folder = tmp_path_factory.mktemp("models")
    G = make_generator("R", resolution=RES)
    torch.manual_seed(0)
    encoder = BackboneEncoder(**{**official_config("ProgressiveBackboneEncoder", w_dim=G.w_dim), **TINY}).eval()
    save_encoder(ReStyleEncoder(encoder, G, G.mapping.w_avg.clone()).eval(), folder / "enc.safetensors")
    save_generator(G, folder / "g.safetensors")
    return folder / "enc.safetensors", folder / "g.safetensors"


def write_frames(folder, status=STATUS, size=RES):
    """A frames stage's outputs for renderer faces: frames.parquet, aligned.mkv, crops.mkv (black aligned
    frames and NaN transforms where the status is not usable, as sg3pipe.frames writes them)."""
    n = len(status)
    usable = np.isin(status, USABLE)
    params = with_values(sample_params(n, 3), angle_deg=0.0, tx=0.0, ty=0.0, scale=1.0)
    aligned = to_uint8(render(params, size).images)
    aligned[~usable] = 0
    angles = np.linspace(-10, 10, n)
    transforms = make_transform(angles, 0.02, -0.01)
    transforms[~usable] = np.nan
    crops = to_uint8(render(params, size, transform=torch.as_tensor(make_transform(angles, 0.02, -0.01))).images)
    write_video(folder / "aligned.mkv", aligned, 25.0, codec="lossless")
    write_video(folder / "crops.mkv", crops, 25.0, codec="lossless")
    columns = {"frame": np.arange(n), "track": np.zeros(n, np.int64), "status": np.array(status),
               "transform": transforms.reshape(n, 9)}  # fmt: skip
    write_table(folder / "frames.parquet", columns, {"shapes": {"transform": [3, 3]}})
    return aligned, transforms


def run(folder, model_file, **encode):
    config = {"encode": {"batch_size": 4, "n_iters": 2, **encode}, "device": "cpu"}
    invert_video(
        folder / "frames.parquet", folder / "aligned.mkv", folder / "latents.parquet", config, model_file,
        crops_video=folder / "crops.mkv" if encode.get("render_with_transform") else None,
    )  # fmt: skip
    return read_table(folder / "latents.parquet")


def test_encoder_inversion_keeps_every_frame_and_equals_calling_invert(tmp_path, models):
    encoder_file, _ = models
    aligned, transforms = write_frames(tmp_path)
    table, meta = run(tmp_path, encoder_file, render_with_transform=True)
    usable = np.isin(STATUS, USABLE)

    assert list(table["frame"]) == list(range(len(STATUS))) and list(table["status"]) == STATUS
    assert list(table["inverted"]) == list(usable)
    latents = column_array(table, "latent", meta["shapes"]["latent"])
    assert meta["shapes"]["latent"] == [16, 32]
    assert np.isnan(latents[~usable]).all() and not np.isnan(latents[usable]).any()
    for name in ("l2", "identity", "crop_l2"):
        assert table[name][~usable].isna().all() and table[name][usable].notna().all(), name
    assert table["lpips"].isna().all() and "encode.lpips_weights is not set" in meta["lpips"]

    # The rule's batches (4 frames, usable ones spread over two) give what one call of invert gives.
    enc = load_encoder(encoder_file)
    target = to_tensor(aligned[usable])
    ws, renders = enc.invert(target, n_iters=2)
    assert_close_to_scale(latents[usable], ws, TOL_LATENTS, dim=-1)
    l2 = (renders - target).square().mean(dim=(1, 2, 3)).numpy()
    assert_close_to_scale(table["l2"][usable], l2, TOL_L2, dim=())  # each frame's own
    assert ((table["identity"][usable] > 0) & (table["identity"][usable] < 1)).all()
    with torch.no_grad():
        moved = enc.decoder.synthesis(ws, transform=torch.linalg.inv(torch.as_tensor(transforms[usable])).float())
    assert not np.allclose(moved.numpy(), renders.numpy(), atol=1e-3)  # the transform did something
    crops = to_tensor(read_all_frames(tmp_path / "crops.mkv")[usable])
    assert_close_to_scale(table["crop_l2"][usable], (moved - crops).square().mean(dim=(1, 2, 3)), TOL_L2, dim=())

    record = meta["provenance"]
    assert record["models"]["encoder"]["sha256"] == file_sha256(encoder_file)
    assert record["models"]["identity"]["path"].endswith("dlib_face_recognition_resnet_model_v1.dat")
    assert record["config"]["encode"]["n_iters"] == 2 and meta["method"] == "encoder"
    assert meta["status_counts"] == {"ok": 3, "interpolated": 1, "no_face": 1, "unusable": 1}


def test_projector_inversion_with_lpips(tmp_path, models):
    _, generator_file = models
    write_frames(tmp_path, status=["ok", "unusable", "ok"])
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), tmp_path / "alexnet.pth")
    projector = {"steps": 3, "lr": 0.05, "space": "w"}
    table, meta = run(tmp_path, generator_file, method="projector", projector=projector, identity=False,
                      lpips_weights=str(tmp_path / "alexnet.pth"))  # fmt: skip
    latents = column_array(table, "latent", meta["shapes"]["latent"])
    assert np.isnan(latents[1]).all() and not np.isnan(latents[[0, 2]]).any()
    assert np.allclose(latents[0], latents[0, :1])  # one vector in W, broadcast to the 16 rows
    assert table["lpips"][[0, 2]].notna().all() and table["lpips"][[1]].isna().all()
    assert table["crop_l2"].isna().all()  # render_with_transform is off
    assert table["identity"].isna().all() and "identity" not in meta["provenance"]["models"]
    models_used = meta["provenance"]["models"]
    assert models_used["generator"]["sha256"] == file_sha256(generator_file)
    assert models_used["lpips_backbone"]["sha256"] == file_sha256(tmp_path / "alexnet.pth")
    assert meta["method"] == "projector" and meta["lpips"].startswith("LPIPS-alex")


def test_frame_count_and_size_mismatches_are_clear_errors(tmp_path, models):
    encoder_file, _ = models
    write_frames(tmp_path)
    write_table(tmp_path / "frames.parquet", {"frame": np.arange(4), "track": np.zeros(4, np.int64),
                                              "status": np.array(["ok"] * 4),
                                              "transform": np.tile(np.eye(3).reshape(1, 9), (4, 1))}, {})  # fmt: skip
    with pytest.raises(ValueError, match="holds more frames than the 4 rows"):
        run(tmp_path, encoder_file)
    write_frames(tmp_path, size=16)
    with pytest.raises(ValueError, match="set align.size: 32"):
        run(tmp_path, encoder_file)
    with pytest.raises(ValueError, match="unknown EncodeSettings keys"):
        run(tmp_path, encoder_file, iterations=3)
