"""The synthetic sample clips: the committed files match their ground truth, which the renderer reproduces."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from sg3pipe.io.tables import column_array, read_table
from sg3pipe.manifest import load_manifest
from sg3pipe.synth.clips import MAX_ANGLE, ClipSpec, clip_params, write_clip
from sg3pipe.synth.params import NUM_PARAMS, PARAM_NAMES
from sg3pipe.synth.renderer import attribute_labels, pixel_landmarks, render
from sg3pipe.transforms import make_transform
from sg3pipe.video.decode import read_all_frames
from sg3pipe.video.probe import probe_video

ROOT = Path(__file__).resolve().parents[1]
SYNTH_CLIPS = ("synth_a", "synth_b")


def truth_path(video: Path) -> Path:
    return video.with_name(video.name.removesuffix(".mp4") + ".truth.parquet")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module", params=SYNTH_CLIPS)
def clip(request):
    """(video path, ground-truth table, its metadata) of a committed clip listed in config/samples.tsv."""
    video = Path(load_manifest(ROOT / "config" / "samples.tsv").loc[request.param, "path"])
    table, metadata = read_table(truth_path(video))
    return video, table, metadata


def test_committed_clips_are_small_and_listed(clip):
    video, table, _ = clip
    assert video.is_file() and video.stat().st_size < 1_000_000
    assert truth_path(video).stat().st_size < 1_000_000
    assert list(table["frame"]) == list(range(len(table)))


def test_video_has_the_frames_and_rate_of_its_ground_truth(clip):
    video, table, metadata = clip
    info = probe_video(video)
    assert (info.width, info.height) == (metadata["resolution"],) * 2 == (256, 256)
    assert info.fps == metadata["fps"] == 25
    assert info.n_frames == len(table)
    assert 3 <= info.duration_s <= 6
    np.testing.assert_allclose(table["time_s"], np.arange(len(table)) / 25)


def test_decoded_frames_match_re_rendered_ground_truth(clip):
    video, table, metadata = clip
    frames = read_all_frames(video)
    params = torch.from_numpy(column_array(table, "params", (NUM_PARAMS,)))
    picks = [0, int(np.argmax(table["eyes_closed"])), len(table) // 2, len(table) - 1]
    rendered = render(params[picks], metadata["resolution"]).images
    rendered = ((rendered + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for frame, image in zip(picks, rendered, strict=True):
        assert psnr(frames[frame], image) > 30, frame  # h264 at crf 18 measured 42-44 dB


def test_ground_truth_columns_agree_with_each_other(clip):
    _, table, metadata = clip
    assert metadata["param_names"] == PARAM_NAMES
    assert metadata["shapes"] == {"transform": [3, 3], "params": [NUM_PARAMS], "landmarks": [68, 2]}
    params = torch.from_numpy(column_array(table, "params", (NUM_PARAMS,)))
    pose = table[["angle_deg", "tx", "ty", "scale"]].to_numpy()
    np.testing.assert_allclose(params[:, -4:].numpy(), pose, atol=1e-6)
    np.testing.assert_allclose(column_array(table, "transform", (3, 3)), make_transform(*pose.T), atol=1e-6)
    landmarks = column_array(table, "landmarks", (68, 2))
    np.testing.assert_allclose(landmarks, pixel_landmarks(params, metadata["resolution"]).numpy(), atol=1e-3)
    for name, value in attribute_labels(params).items():
        assert list(table[name]) == value.tolist(), name


def test_ground_truth_is_rebuilt_exactly_from_its_recorded_spec(clip):
    _, table, metadata = clip
    spec = ClipSpec(**metadata["provenance"]["config"])
    assert torch.equal(clip_params(spec), torch.from_numpy(column_array(table, "params", (NUM_PARAMS,))))


def test_clips_move_smile_and_blink(clip):
    _, table, _ = clip
    angle, shift = table["angle_deg"], table[["tx", "ty"]].to_numpy()
    assert angle.abs().max() <= MAX_ANGLE and np.ptp(angle) > 5
    assert np.ptp(shift, axis=0).min() > 0.03
    assert 0.28 < table["scale"].min() and table["scale"].max() < 0.4 and np.ptp(table["scale"]) > 0.01
    assert not table["smiling"].iloc[0] and table["smiling"].iloc[-1]
    assert not table["eyes_closed"].iloc[0] and table["eyes_closed"].sum() >= 2


def test_write_clip_round_trip(tmp_path):
    spec = ClipSpec(seed=3, seconds=0.4, resolution=64, glasses=1.0)
    write_clip(tmp_path / "c.mp4", tmp_path / "c.truth.parquet", spec)
    info = probe_video(tmp_path / "c.mp4")
    table, metadata = read_table(tmp_path / "c.truth.parquet")
    assert info.n_frames == len(table) == spec.frames == 10 and info.width == 64
    assert metadata["provenance"]["config"] == dataclasses.asdict(spec)
    assert table["glasses"].all()
    assert torch.equal(clip_params(spec), clip_params(ClipSpec(seed=3, seconds=0.4, resolution=64, glasses=1.0)))
