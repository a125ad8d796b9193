"""Temporal smoothing of latents and transforms (sg3pipe.temporal)."""

from pathlib import Path

import numpy as np
import pytest

from sg3pipe.io.tables import column_array, read_table
from sg3pipe.temporal import (
    OFFICIAL_TAPS,
    SmoothingSettings,
    average_fine_rows,
    filter_taps,
    smooth_latents,
    smooth_series,
    smooth_transforms,
    smoothing_settings,
)
from sg3pipe.transforms import make_transform, transform_params

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = SmoothingSettings()
NO_FINE = SmoothingSettings(fine_rows=None)
GAUSSIAN = SmoothingSettings(filter="gaussian", fine_rows=None)


def official_filter(x: np.ndarray) -> np.ndarray:
    """The official code's smoothing (yuval-alaluf/stylegan3-editing ``inversion/video/post_processing.py``):
    valid positions only (N - 4 frames out)."""
    return np.stack(
        [
            (0.25 * x[t - 2] + 0.75 * x[t - 1] + x[t] + 0.75 * x[t + 1] + 0.25 * x[t + 2]) / 3
            for t in range(2, len(x) - 2)
        ]
    )


def test_equals_the_official_filter_away_from_the_ends_and_keeps_every_frame():
    x = np.random.default_rng(0).normal(size=(30, 4, 8))
    out = smooth_latents(x, np.ones(30, bool), NO_FINE)
    assert out.shape == x.shape
    np.testing.assert_allclose(out[2:-2], official_filter(x), rtol=0, atol=1e-6)
    exact = smooth_series(x, np.ones(30, bool), np.asarray(OFFICIAL_TAPS))
    np.testing.assert_allclose(exact[2:-2], official_filter(x), rtol=0, atol=1e-12)


def test_end_frames_fit_a_line_through_the_taps_that_exist():
    x = np.random.default_rng(1).normal(size=(10, 3))
    out = smooth_series(x, np.ones(10, bool), np.asarray(OFFICIAL_TAPS))
    # weighted least-squares line through frames 0..2 (taps 1, 0.75, 0.25) and 0..3, evaluated at frame 0 and 1
    np.testing.assert_allclose(out[0], (28 * x[0] + 6 * x[1] - 3 * x[2]) / 31, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[1], (18 * x[0] + 20 * x[1] + 12 * x[2] + 3 * x[3]) / 53, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[-1], (28 * x[-1] + 6 * x[-2] - 3 * x[-3]) / 31, rtol=0, atol=1e-12)


USABLE_PATTERNS = {
    "all": np.ones(40, bool),
    "gap in the middle": np.r_[np.ones(15), np.zeros(4), np.ones(21)].astype(bool),
    "gaps at the ends": np.r_[np.zeros(3), np.ones(30), np.zeros(7)].astype(bool),
    "isolated frames": np.isin(np.arange(40), [0, 1, 6, 12, 13, 14, 20, 30, 31, 39]),
}


@pytest.mark.parametrize(
    "settings",
    [NO_FINE, GAUSSIAN, SmoothingSettings(filter="gaussian", sigma=2.5, fine_rows=None)],
    ids=["official", "gaussian", "gaussian sigma 2.5"],
)
@pytest.mark.parametrize("pattern", USABLE_PATTERNS)
def test_a_linear_trend_passes_through_unchanged(settings, pattern):
    usable = USABLE_PATTERNS[pattern]
    t = np.arange(40, dtype=np.float64)
    ramp = np.stack([3.0 + 0.0 * t, 0.5 * t - 4.0, -2.0 * t + 7.0], axis=1)  # [N, 3]
    values = np.where(usable[:, None], ramp, np.nan)
    out = smooth_series(values, usable, filter_taps(settings))
    np.testing.assert_allclose(out[usable], ramp[usable], rtol=0, atol=1e-9)
    assert np.isnan(out[~usable]).all()
    # Latents and transforms go through the same filter.
    ws = np.broadcast_to(ramp[:, None, :], (40, 16, 3))
    np.testing.assert_allclose(smooth_latents(ws, usable, settings)[usable], ws[usable], rtol=0, atol=1e-4)
    angle, tx, ty, scale = 170.0 + 1.5 * t, 0.01 * t - 0.2, 0.1 - 0.005 * t, 1.0 + 0.01 * t  # turns through 180
    smoothed = smooth_transforms(make_transform(angle, tx, ty, scale), usable, settings)
    np.testing.assert_allclose(np.mod(smoothed["angle_deg"][usable] - angle[usable] + 180, 360), 180, atol=1e-9)
    for name, truth in (("tx", tx), ("ty", ty), ("scale", scale)):
        np.testing.assert_allclose(smoothed[name][usable], truth[usable], rtol=0, atol=1e-12)


def test_lone_frames_and_pairs_keep_their_values():
    """One usable frame in reach has no line to fit and keeps its value; two give the line through both."""
    x = np.random.default_rng(8).normal(size=(12, 2))
    usable = np.isin(np.arange(12), [0, 5, 6, 11])
    out = smooth_series(x, usable, np.asarray(OFFICIAL_TAPS))
    np.testing.assert_allclose(out[usable], x[usable], rtol=0, atol=1e-12)
    with np.errstate(all="raise"):
        assert np.isnan(smooth_series(x, np.zeros(12, bool), np.asarray(OFFICIAL_TAPS))).all()


def test_unusable_frames_stay_nan_and_do_not_leak_into_their_neighbours():
    x = np.random.default_rng(2).normal(size=(12, 5))
    usable = np.ones(12, bool)
    usable[5] = False
    poisoned = x.copy()
    poisoned[5] = 1e6  # whatever an unusable row holds must not matter
    nan_row = x.copy()
    nan_row[5] = np.nan
    a = smooth_series(poisoned, usable, np.asarray(OFFICIAL_TAPS))
    b = smooth_series(nan_row, usable, np.asarray(OFFICIAL_TAPS))
    assert np.isnan(a[5]).all() and np.isnan(b[5]).all()
    np.testing.assert_array_equal(np.delete(a, 5, 0), np.delete(b, 5, 0))
    assert np.isfinite(np.delete(a, 5, 0)).all()
    # Frame 4 is the line fitted to frames 2, 3, 4 and 6 only (taps 0.25, 0.75, 1, 0.25), at frame 4.
    expected = (5 * x[2] + 24 * x[3] + 44 * x[4] + 17 * x[6]) / 90
    np.testing.assert_allclose(a[4], expected, rtol=0, atol=1e-12)


def test_gaussian_lowers_noise():
    settings = SmoothingSettings(filter="gaussian", sigma=2.0, fine_rows=None)
    noise = np.random.default_rng(3).normal(size=(60, 1, 16))
    assert smooth_latents(noise, np.ones(60, bool), settings).std() < 0.5 * noise.std()


def test_fine_rows_become_the_video_mean_and_the_coarse_rows_do_not():
    ws = np.random.default_rng(4).normal(size=(7, 16, 4))
    usable = np.array([1, 1, 0, 1, 1, 1, 1], bool)
    out = average_fine_rows(ws, usable, (9, 15))
    np.testing.assert_allclose(out[usable, 9:], np.broadcast_to(ws[usable, 9:].mean(0), (6, 7, 4)))
    np.testing.assert_array_equal(out[:, :9], ws[:, :9])
    # Several edit factors per frame: each factor's fine rows get their own mean.
    stacked = np.stack([ws, ws + 1.0], axis=1)  # [N, K, num_ws, w_dim]
    both = average_fine_rows(stacked, usable, (9, 15))
    np.testing.assert_allclose(both[:, 1], out + 1.0)


def test_editing_before_or_after_smoothing_gives_the_same_latents():
    ws = np.random.default_rng(5).normal(size=(20, 16, 8))
    direction = np.random.default_rng(6).normal(size=(1, 8))
    usable = np.ones(20, bool)
    usable[[0, 7]] = False
    before = smooth_latents(ws + 2.0 * direction, usable, OFFICIAL)
    after = smooth_latents(ws, usable, OFFICIAL) + 2.0 * direction
    np.testing.assert_allclose(before[usable], after[usable], atol=1e-5)


def test_transforms_stay_similarities_and_follow_the_true_pose_better():
    rng = np.random.default_rng(7)
    n = 80
    t = np.arange(n)
    true_angle = 25 * np.sin(t / 12)  # degrees
    true_tx, true_ty = 0.1 * np.cos(t / 15), 0.05 * np.sin(t / 9)
    noisy = make_transform(
        true_angle + rng.normal(0, 2.0, n), true_tx + rng.normal(0, 0.01, n), true_ty + rng.normal(0, 0.01, n)
    )
    out = smooth_transforms(noisy, np.ones(n, bool), OFFICIAL)
    linear = out["transform"][:, :2, :2]
    gram = linear @ np.transpose(linear, (0, 2, 1))
    np.testing.assert_allclose(gram, np.eye(2) * (out["scale"] ** 2)[:, None, None], atol=1e-12)
    angle_err_before = np.abs(transform_params(noisy)[0] - true_angle).mean()
    angle_err_after = np.abs(out["angle_deg"] - true_angle).mean()
    assert angle_err_after < 0.7 * angle_err_before
    # Entry-by-entry averaging of the matrices (the official way) shrinks them where the angle moves.
    entrywise = official_filter(noisy)
    assert transform_params(entrywise)[3].min() < 0.999
    np.testing.assert_allclose(out["scale"], 1.0, atol=1e-12)


def test_angles_are_unwrapped_across_180_degrees():
    angles = np.array([170.0, 175.0, 179.0, -178.0, -174.0, -170.0])
    out = smooth_transforms(make_transform(angles, 0.0, 0.0), np.ones(6, bool), OFFICIAL)
    turned = np.mod(out["angle_deg"], 360)
    assert ((turned > 165) & (turned < 195)).all()  # near 180, never pulled towards 0


def test_unusable_transforms_are_nan_rows():
    m = make_transform(np.zeros(5), 0.0, 0.0)
    usable = np.array([1, 1, 0, 1, 1], bool)
    out = smooth_transforms(m, usable, OFFICIAL)
    assert np.isnan(out["transform"][2]).all()
    np.testing.assert_allclose(out["transform"][usable], m[usable], atol=1e-12)


# Noise of the frames stage's pose estimates (dlib landmarks) on the real-photo clip, in the truth table's units
# (degrees, image widths, scale factor): 1.4826 x the median absolute deviation of estimate minus truth over its
# 100 frames, the estimates mapped to the camera as in tests/test_frames.py.
POSE_NOISE = np.array([0.268, 0.00141, 0.00131, 0.00448])


@pytest.mark.parametrize("settings", [OFFICIAL, GAUSSIAN], ids=["official", "gaussian"])
@pytest.mark.parametrize("clip", ["astronaut", "synth_a", "synth_b"])
def test_end_frames_of_the_bundled_clips_are_no_worse_than_raw(clip, settings):
    """On a bundled clip's true pose plus noise of the frames stage's size, every smoothed end frame errs less
    than the raw one, and without noise the ends are bent no more than the middle of the clip.

    The smoothing is linear, so at frame t the expected squared error is exactly ``bias_t^2 + sigma^2 |w_t|^2``
    (``bias`` the smoothed truth minus the truth, ``w_t`` the frame's weights); the raw frame's is ``sigma^2``.
    """
    truth, _ = read_table(ROOT / "samples" / f"{clip}.truth.parquet")
    pose = truth[["angle_deg", "tx", "ty", "scale"]].to_numpy(np.float64)
    n, usable, taps = len(pose), np.ones(len(pose), bool), filter_taps(settings)
    smoothed = smooth_transforms(column_array(truth, "transform", (3, 3)), usable, settings)
    bias = np.stack([smoothed[name] for name in ("angle_deg", "tx", "ty", "scale")], axis=1) - pose
    gain = np.linalg.norm(smooth_series(np.eye(n), usable, taps), axis=1)
    rms = np.sqrt(bias**2 + (gain[:, None] * POSE_NOISE) ** 2)
    ends, middle = [0, 1, n - 2, n - 1], slice(len(taps) // 2, n - len(taps) // 2)
    # measured: at most 0.94 sigma (the average of the taps at hand, which lags a trend, reached 4.0 sigma)
    assert (rms[ends] < POSE_NOISE).all(), rms[ends] / POSE_NOISE
    assert (np.abs(bias[ends]) <= np.abs(bias[middle]).max(axis=0)).all()


def test_settings_are_checked():
    assert smoothing_settings({"filter": "gaussian", "sigma": 1.5, "fine_rows": [8, 15]}).fine_rows == (8, 15)
    with pytest.raises(ValueError, match="unknown SmoothingSettings keys"):
        smoothing_settings({"sigmaa": 1.0})
    with pytest.raises(ValueError, match="use one of"):
        smoothing_settings({"filter": "box"})
    with pytest.raises(ValueError, match="sigma > 0"):
        smoothing_settings({"filter": "gaussian", "sigma": 0})
