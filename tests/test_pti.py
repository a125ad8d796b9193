"""Per-video pivotal tuning (sg3pipe.pti) on a pseudo video of the shipped synthetic generator: it lowers the
crop loss, trains only what it should, resumes to the same weights, never renders unusable frames, stops
early on a plateau but never past ``steps``, and refuses unknown settings.

The pseudo video: six frames of one face (latents ``G.mapping(z0 + 0.3 n_i)``), each rendered with a random
similarity crop transform and rounded to uint8; the pivots are the true latents plus noise, so the tuned
generator has to move to reproduce the crops from them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import safetensors
import torch
import torchvision
from generators import make_generator

from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.metrics.lpips_loader import load_lpips
from sg3pipe.networks.loading import load_generator, save_generator
from sg3pipe.pixels import to_uint8
from sg3pipe.pti import (
    EarlyStop,
    PTISettings,
    evaluate_l2,
    pti_loss_table,
    pti_settings,
    running_mean,
    tune_generator,
    tune_video,
)
from sg3pipe.training import CHECKPOINT
from sg3pipe.transforms import make_transform
from sg3pipe.video.decode import read_all_frames
from sg3pipe.video.frame_store import FrameStore
from sg3pipe.video.writer import write_video

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "models" / "synth_generator.safetensors"
N_FRAMES = 6
PIVOT_NOISE = 0.5  # pivot perturbation, in standard deviations of the true latents
# Twelve steps at 10x the paper's learning rate (the tiny generator moves little at 3e-4 in so few steps).
TUNE = PTISettings(steps=12, lr=3e-3, batch=2, checkpoint_every=5, seed=0)
# Measured (seed 0): mean crop l2 of the pivots 0.0484 before, 0.0165 after (ratio 0.34); per frame the ratios
# are 0.14-0.69 (after ten steps, 0.36 and up to 0.95; with lr 1e-2 one frame got worse: 1.53).
MEAN_RATIO_MAX = 0.6
FRAME_RATIO_MAX = 0.9
# The true latents reproduce the uint8 crops up to rounding, (1/127.5)^2 / 12 = 5.1e-6, and clipping to
# [0, 255] (measured 5.0e-6 to 3.5e-5); with M in place of inverse(M), 0.07 to 0.12.
ROUNDING_L2_MAX = 1e-4


@pytest.fixture(scope="module")
def G():
    return load_generator(GENERATOR)


@pytest.fixture(scope="module")
def video(G):
    """``(crops [6, 64, 64, 3] uint8, pivots [6, 16, 128], transforms M [6, 3, 3] float64, true latents)``."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(1, G.z_dim, generator=g) + 0.3 * torch.randn(N_FRAMES, G.z_dim, generator=g)
    rng = np.random.default_rng(1)
    transforms = make_transform(
        rng.uniform(-15, 15, N_FRAMES),
        rng.uniform(-0.06, 0.06, N_FRAMES),
        rng.uniform(-0.06, 0.06, N_FRAMES),
        rng.uniform(0.95, 1.05, N_FRAMES),
    )
    with torch.no_grad():
        ws = G.mapping(z)
        crops = to_uint8(G.synthesis(ws, transform=torch.linalg.inv(torch.from_numpy(transforms)).float()))
    pivots = ws + PIVOT_NOISE * ws.std() * torch.randn(ws.shape, generator=g)
    return crops, pivots.numpy(), transforms, ws.numpy()


@pytest.fixture(scope="module")
def tuned(G, video, tmp_path_factory):
    """One tuning of the pseudo video with :data:`TUNE`, and G's state dict before it."""
    crops, pivots, transforms, _ = video
    before = {k: v.clone() for k, v in G.state_dict().items()}
    result = tune_generator(G, crops, pivots, transforms, TUNE, tmp_path_factory.mktemp("pti"))
    return result, before


def subset(video, frames):
    crops, pivots, transforms, _ = video
    return crops[frames], pivots[frames], transforms[frames]


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"tensors differ: {different[:5]}"


def assert_same_losses(a, b):
    """Equal loss records, NaN (no LPIPS) equal to NaN."""
    assert len(a) == len(b)
    for name, column in pti_loss_table(a).items():
        np.testing.assert_array_equal(column, pti_loss_table(b)[name], err_msg=name)


def test_evaluate_l2_renders_each_frame_with_the_inverse_of_its_crop_transform(G, video):
    crops, pivots, transforms, ws = video
    l2 = evaluate_l2(G, crops, ws, transforms)
    assert l2.shape == (N_FRAMES,) and l2.dtype == np.float64
    assert (l2 < ROUNDING_L2_MAX).all(), l2
    # M instead of inverse(M) renders other content: the test can tell the conventions apart.
    assert (evaluate_l2(G, crops, ws, np.linalg.inv(transforms)) > 100 * ROUNDING_L2_MAX).all()
    usable = np.array([True, False, True, True, True, False])
    by_one = evaluate_l2(G, crops, pivots, transforms, usable=usable, batch=1)
    by_four = evaluate_l2(G, crops, pivots, transforms, usable=usable, batch=4)
    assert np.isnan(by_one[~usable]).all() and np.isnan(by_four[~usable]).all()
    np.testing.assert_allclose(by_four[usable], by_one[usable], rtol=1e-4)


def test_tuning_lowers_the_crop_loss_of_the_pivots(G, video, tuned):
    crops, pivots, transforms, _ = video
    result, _ = tuned
    start = evaluate_l2(G, crops, pivots, transforms)
    end = evaluate_l2(result.generator, crops, pivots, transforms)
    assert end.mean() < MEAN_RATIO_MAX * start.mean(), (start, end)
    assert (end < FRAME_RATIO_MAX * start).all(), (start, end)
    assert result.outcome == "completed" and result.done
    assert [r["step"] for r in result.losses] == list(range(TUNE.steps))
    for record in result.losses:
        assert record.keys() == {"step", "loss", "l2", "lpips"}
        assert record["loss"] == record["l2"] and math.isnan(record["lpips"])  # l2_lambda 1, no LPIPS module


def test_tuning_trains_only_the_synthesis_layers_and_leaves_G_alone(G, tuned, tmp_path):
    result, before = tuned
    for key, value in before.items():
        assert torch.equal(G.state_dict()[key], value), f"G's {key} changed"
    after = result.generator.state_dict()
    frozen = [k for k in before if k.startswith(("mapping.", "synthesis.input."))]
    assert "synthesis.input.weight" in frozen and "synthesis.input.affine.weight" in frozen
    assert "mapping.fc0.weight" in frozen and "mapping.w_avg" in frozen
    for key in frozen:
        assert torch.equal(after[key], before[key]), f"{key} changed"
    trained = [name for name, _ in G.synthesis.named_parameters() if not name.startswith("input.")]
    unchanged = [name for name in trained if torch.equal(after[f"synthesis.{name}"], before[f"synthesis.{name}"])]
    assert not unchanged, f"trainable parameters that did not move: {unchanged}"
    buffers = [f"synthesis.{name}" for name, _ in G.synthesis.named_buffers()]
    assert all(torch.equal(after[k], before[k]) for k in buffers), "a buffer (magnitude EMA, filter) changed"
    assert not result.generator.training
    # The tuned file records the generator it started from.
    assert result.generator.source == G.source
    path = save_generator(result.generator, tmp_path / "tuned.safetensors")
    with safetensors.safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()["source"])["sha256"] == G.source["sha256"]


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(G, video, tmp_path):
    crops, pivots, transforms = subset(video, [0, 1, 2, 3])
    s = PTISettings(steps=4, lr=3e-3, batch=2, checkpoint_every=2, seed=3)
    first = tune_generator(G, crops, pivots, transforms, s, tmp_path / "split", max_steps_this_run=2)
    assert first.outcome == "interrupted" and not first.done and len(first.losses) == 2
    assert (tmp_path / "split" / CHECKPOINT).exists()
    keeping = dataclasses.replace(s, keep_checkpoint=True)  # what happens after the run: not the run's config
    resumed = tune_generator(G, crops, pivots, transforms, keeping, tmp_path / "split")
    straight = tune_generator(G, crops, pivots, transforms, s, tmp_path / "straight")
    assert resumed.outcome == straight.outcome == "completed"
    assert_same_losses(resumed.losses, straight.losses)
    assert_same_weights(resumed.generator, straight.generator)
    # A finished run's rerun does no more steps.
    again = tune_generator(G, crops, pivots, transforms, s, tmp_path / "straight")
    assert_same_losses(again.losses, straight.losses)
    assert_same_weights(again.generator, straight.generator)
    # Another video's pivots cannot resume this checkpoint (kept above by keep_checkpoint): it is replaced by a
    # tuning from the start, the same as one in an empty folder.
    kept = tune_generator(G, crops, pivots, transforms, keeping, tmp_path / "kept")
    assert (tmp_path / "kept" / CHECKPOINT).exists() and kept.outcome == "completed"
    other = tune_generator(G, crops, pivots + 1.0, transforms, s, tmp_path / "kept")
    fresh = tune_generator(G, crops, pivots + 1.0, transforms, s, tmp_path / "fresh")
    assert_same_losses(other.losses, fresh.losses)
    assert_same_weights(other.generator, fresh.generator)


def test_unusable_frames_are_never_rendered(G, video, tmp_path):
    crops, pivots, transforms, _ = video
    pivots, transforms, crops = pivots.copy(), transforms.copy(), crops.copy()
    bad = [1, 4]
    pivots[bad], transforms[bad], crops[bad] = np.nan, np.nan, 255  # as the frames and inversion stages leave them
    s = PTISettings(steps=3, lr=3e-3, batch=2, checkpoint_every=10, seed=5)
    with_gaps = tune_generator(G, crops, pivots, transforms, s, tmp_path / "gaps")
    good = [0, 2, 3, 5]
    without = tune_generator(G, *subset(video, good), s, tmp_path / "good")
    # NaN pivots in a batch would make the loss NaN (FloatingPointError); the same draws as on the usable
    # frames alone give the same run.
    assert_same_losses(with_gaps.losses, without.losses)
    assert_same_weights(with_gaps.generator, without.generator)
    l2 = evaluate_l2(with_gaps.generator, crops, pivots, transforms)
    assert np.isnan(l2[bad]).all() and np.isfinite(l2[good]).all()


def test_no_usable_frame_and_nan_usable_frames_are_errors(G, video, tmp_path):
    crops, pivots, transforms, _ = video
    s = PTISettings(steps=1)
    with pytest.raises(ValueError, match="no usable frame"):
        tune_generator(G, crops, np.full_like(pivots, np.nan), transforms, s, tmp_path)
    with pytest.raises(ValueError, match="no usable frame"):
        tune_generator(G, crops, pivots, transforms, s, tmp_path, usable=np.zeros(N_FRAMES, bool))
    nan_pivots = pivots.copy()
    nan_pivots[2] = np.nan
    with pytest.raises(ValueError, match=r"frames \[2\] are marked usable"):
        tune_generator(G, crops, nan_pivots, transforms, s, tmp_path, usable=np.ones(N_FRAMES, bool))
    with pytest.raises(ValueError, match="crops"):
        tune_generator(G, crops[:, :32, :32], pivots, transforms, s, tmp_path)
    assert not (tmp_path / CHECKPOINT).exists()


def test_early_stop_ends_a_flat_run_and_never_runs_past_steps(G, video, tmp_path):
    # lr 0 and a batch of both frames: every step's loss is the same.
    two = subset(video, [0, 3])
    flat = PTISettings(steps=50, lr=0.0, batch=2, checkpoint_every=100, early_stop_patience=2)
    result = tune_generator(G, *two, flat, tmp_path / "flat")
    assert result.outcome == "early_stop" and result.done
    assert len(result.losses) == 4  # 2 steps fill the first window, 2 more without progress
    rerun = tune_generator(G, *two, flat, tmp_path / "flat")  # the stop is in the checkpoint
    assert rerun.outcome == "early_stop"
    assert_same_losses(rerun.losses, result.losses)
    patient = PTISettings(steps=3, lr=0.0, batch=2, checkpoint_every=100, early_stop_patience=50)
    result = tune_generator(G, *two, patient, tmp_path / "patient")
    assert result.outcome == "completed" and len(result.losses) == 3


def test_early_stop_rule():
    def stop_step(losses, patience, min_delta=0.01):
        rule = EarlyStop(patience, min_delta)
        return next((i + 1 for i, loss in enumerate(losses) if rule.update(loss)), None)

    assert stop_step([1.0] * 100, 5) == 10
    assert stop_step([1.0] * 100, 0) is None  # off
    assert stop_step([0.95**i for i in range(300)], 5) is None  # 5% better every step is progress
    # Progress, then a plateau: stops `patience` window means after the last one that improved.
    losses = [1.0, 0.5, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]
    assert stop_step(losses, 2) == 6  # best window mean at step 4 (0.25); steps 5 and 6 do not beat it by 1%
    rng = np.random.default_rng(0)
    noisy = 1.0 + 0.05 * rng.standard_normal(1000)  # no trend: stops, and well before 1000 steps
    assert stop_step(noisy, 10) < 200
    assert stop_step([math.nan] * 10, 3) == 5  # a NaN window never counts as progress


def test_lpips_term(G, video, tmp_path):
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), tmp_path / "alexnet.pth")
    lpips = load_lpips(tmp_path / "alexnet.pth", "alex")
    s = PTISettings(steps=2, lr=3e-3, batch=2, lpips_lambda=0.5, checkpoint_every=10)
    result = tune_generator(G, *subset(video, [0, 1]), s, tmp_path / "pti", lpips=lpips)
    for r in result.losses:
        assert r["lpips"] > 0 and r["loss"] == pytest.approx(r["l2"] + 0.5 * r["lpips"], rel=1e-6)
    # The checkpoint belongs to a run with this LPIPS module: a run without one starts over.
    alone = tune_generator(G, *subset(video, [0, 1]), s, tmp_path / "pti", lpips=None)
    assert len(alone.losses) == 2 and all(math.isnan(r["lpips"]) for r in alone.losses)


def test_loss_table(tuned, tmp_path):
    result, _ = tuned
    columns = pti_loss_table(result.losses)
    write_table(tmp_path / "losses.parquet", columns, {"what": "pti losses"})
    table, _ = read_table(tmp_path / "losses.parquet")
    assert list(table.columns) == ["step", "loss", "l2", "lpips"]
    assert table["step"].tolist() == list(range(TUNE.steps))
    np.testing.assert_array_equal(table["loss"], [r["loss"] for r in result.losses])
    assert table["lpips"].isna().all()


def test_settings_from_config():
    assert pti_settings(None) == PTISettings()
    assert pti_settings({"steps": 8000, "batch": 4}) == PTISettings(steps=8000, batch=4)
    with pytest.raises(ValueError, match=r"\['learning_rate', 'stepz'\]"):
        pti_settings({"stepz": 10, "learning_rate": 1e-3})
    with pytest.raises(ValueError, match="batch must be >= 1"):
        pti_settings({"batch": 0})
    with pytest.raises(ValueError, match="checkpoint_every"):
        tune_generator(None, None, None, None, PTISettings(checkpoint_every=0), "unused")


def test_running_mean_averages_each_value_with_the_ones_before_it():
    values = np.array([4.0, 2.0, 6.0, 0.0, 8.0])
    np.testing.assert_allclose(running_mean(values, 2), [4.0, 3.0, 4.0, 3.0, 4.0])
    np.testing.assert_allclose(running_mean(values, 3), [4.0, 3.0, 4.0, 8 / 3, 14 / 3])
    np.testing.assert_allclose(running_mean(values, 1), values)


def write_video_tables(folder: Path, crops: np.ndarray, pivots: np.ndarray, transforms: np.ndarray) -> dict:
    """``crops.mkv`` (lossless) and the frames and latents tables of a pseudo video, as the frames and encode stages
    write them: the paths ``tune_video`` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(crops)
    write_video(folder / "crops.mkv", crops, 25.0, codec="lossless")
    write_table(folder / "frames.parquet", {"frame": np.arange(n), "transform": transforms.reshape(n, 9)}, {})
    inverted = np.isfinite(pivots).all(axis=(1, 2))
    latents = {"frame": np.arange(n), "latent": pivots, "inverted": inverted}
    write_table(folder / "latents.parquet", latents, {"shapes": {"latent": list(pivots.shape[1:])}})
    return {name: folder / f"{name}.parquet" for name in ("frames", "latents")} | {"crops": folder / "crops.mkv"}


def test_tune_video_reads_the_crops_from_the_file_with_the_result_of_the_crops_in_memory(G, video, tmp_path):
    crops, pivots, transforms, _ = video
    paths = write_video_tables(tmp_path / "video", crops, pivots, transforms)
    s = PTISettings(steps=4, lr=3e-3, batch=2, checkpoint_every=2, seed=2)
    outputs = {"losses": tmp_path / "loss.parquet", "curve": tmp_path / "loss.png"}
    from_file = tune_video(paths, G, s, tmp_path / "work", outputs)
    assert not (tmp_path / "work").exists()  # the crops file goes with the working folder

    # Every crop decoded at once, as the tables give the pivots and transforms: the same draws, losses and weights.
    frames, _ = read_table(paths["frames"])
    latents, _ = read_table(paths["latents"])
    ws = column_array(latents, "latent", pivots.shape[1:])
    matrices = column_array(frames, "transform", (3, 3)).astype(np.float64)
    in_memory = read_all_frames(paths["crops"])
    np.testing.assert_array_equal(in_memory, crops)
    reference = tune_generator(G, in_memory, ws, matrices, s, tmp_path / "memory")
    assert_same_losses(from_file.losses, reference.losses)
    assert_same_weights(from_file.generator, reference.generator)
    _, meta = read_table(outputs["losses"])
    assert meta["start_l2"] == float(np.mean(evaluate_l2(G, in_memory, ws, matrices)))
    assert meta["end_l2"] == float(np.mean(evaluate_l2(reference.generator, in_memory, ws, matrices)))

    # A checkpoint of a tuning on the array resumes on the store: the inputs' fingerprint is the same.
    keeping = dataclasses.replace(s, keep_checkpoint=True)
    first = tune_generator(G, in_memory, ws, matrices, keeping, tmp_path / "split", max_steps_this_run=2)
    with FrameStore.from_video(paths["crops"], tmp_path / "crops.u8") as store:
        resumed = tune_generator(G, store, ws, matrices, s, tmp_path / "split", max_steps_this_run=1)
    assert len(first.losses) == 2 and len(resumed.losses) == 3  # went on from step 2 instead of starting over
    assert_same_losses(resumed.losses, reference.losses[:3])


def test_the_memory_of_tune_video_does_not_grow_with_the_clip(tmp_path):
    """tracemalloc's peak (numpy's arrays and Python objects; torch's tensors are not traced) of a tuning of a clip
    and of one ten times longer: all crops at once would add 196 KiB a frame at 256 px (35 MiB for the 180 frames
    more; the 36 more usable ones alone 7 MiB); per-frame latents and transforms add about 1 KiB a frame, and the
    batches of 8 crops that evaluate_l2 reads are full in the longer clip only (0.8 MiB more)."""
    G = make_generator("T", resolution=256, num_layers=4, num_critical=1, channel_max=8, conv_kernel=1)
    rng = np.random.default_rng(0)
    s = PTISettings(steps=2, lr=3e-3, batch=2, checkpoint_every=10, seed=0)
    clips = {}
    for n in (20, 200):
        # Every fifth frame is usable, so the longer clip also reads ten times as many crops by index.
        with torch.no_grad():
            ws = G.mapping(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(n))).numpy()
        ws[np.arange(n) % 5 != 0] = np.nan
        crops = rng.integers(0, 256, (n, 256, 256, 3), dtype=np.uint8)
        transforms = make_transform(rng.uniform(-10, 10, n), rng.uniform(-0.05, 0.05, n), rng.uniform(-0.05, 0.05, n))
        clips[n] = write_video_tables(tmp_path / f"clip{n}", crops, ws, transforms)
    del crops
    outputs = {"losses": tmp_path / "loss.parquet", "curve": tmp_path / "loss.png"}
    tune_video(clips[20], G, s, tmp_path / "work", outputs)  # first-call allocations (imports, caches) out of the way
    peaks = {}
    for n, paths in clips.items():
        tracemalloc.start()
        try:
            tune_video(paths, G, s, tmp_path / "work", outputs)
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert not (tmp_path / "work").exists()
    grown = peaks[200] - peaks[20]
    assert grown < 3 * 2**20, f"peak {peaks[20] / 2**20:.1f} -> {peaks[200] / 2**20:.1f} MiB for 10x the frames"
