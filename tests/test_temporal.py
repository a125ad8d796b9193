"""Temporal smoothing of latents and transforms (sg3pipe.temporal)."""

import numpy as np
import pytest

from sg3pipe.temporal import (
    OFFICIAL_TAPS,
    SmoothingSettings,
    average_fine_rows,
    smooth_latents,
    smooth_series,
    smooth_transforms,
    smoothing_settings,
)
from sg3pipe.transforms import make_transform, transform_params

OFFICIAL = SmoothingSettings()
NO_FINE = SmoothingSettings(fine_rows=None)


def official_filter(x: np.ndarray) -> np.ndarray:
    """The official code's smoothing, written from FACTS.md: valid positions only (N - 4 frames out)."""
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


def test_ends_renormalise_the_taps_that_exist():
    x = np.random.default_rng(1).normal(size=(10, 3))
    out = smooth_series(x, np.ones(10, bool), np.asarray(OFFICIAL_TAPS))
    np.testing.assert_allclose(out[0], (x[0] + 0.75 * x[1] + 0.25 * x[2]) / 2.0)
    np.testing.assert_allclose(out[1], (0.75 * x[0] + x[1] + 0.75 * x[2] + 0.25 * x[3]) / 2.75)
    np.testing.assert_allclose(out[-1], (x[-1] + 0.75 * x[-2] + 0.25 * x[-3]) / 2.0)


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
    # Frame 4 is smoothed from frames 2, 3, 4 and 6 only.
    expected = (0.25 * x[2] + 0.75 * x[3] + x[4] + 0.25 * x[6]) / 2.25
    np.testing.assert_allclose(a[4], expected)


def test_gaussian_keeps_constants_and_ramps_and_lowers_noise():
    t = np.arange(60, dtype=np.float64)
    settings = SmoothingSettings(filter="gaussian", sigma=2.0, fine_rows=None)
    ramp = smooth_latents(np.stack([np.full(60, 3.0), 0.5 * t], axis=1)[:, None, :], np.ones(60, bool), settings)
    np.testing.assert_allclose(ramp[:, 0, 0], 3.0, atol=1e-5)
    np.testing.assert_allclose(ramp[10:-10, 0, 1], 0.5 * t[10:-10], atol=1e-4)  # a symmetric filter keeps a line
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


def test_settings_are_checked():
    assert smoothing_settings({"filter": "gaussian", "sigma": 1.5, "fine_rows": [8, 15]}).fine_rows == (8, 15)
    with pytest.raises(ValueError, match="unknown SmoothingSettings keys"):
        smoothing_settings({"sigmaa": 1.0})
    with pytest.raises(ValueError, match="use one of"):
        smoothing_settings({"filter": "box"})
    with pytest.raises(ValueError, match="sigma > 0"):
        smoothing_settings({"filter": "gaussian", "sigma": 0})
