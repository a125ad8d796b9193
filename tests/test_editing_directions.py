"""InterFaceGAN boundaries, boundary files, projection std and StyleSpace directions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from generators import make_generator

from sg3pipe.editing.directions import (
    BoundaryFileError,
    conditional_normal,
    extreme_indices,
    fit_boundary,
    load_boundary,
    projection_std,
    save_boundary,
    style_direction,
)
from sg3pipe.networks.stylespace import flatten_styles, unflatten_styles

N, D = 10_000, 64


@pytest.fixture(scope="module")
def planted():
    """Latents ~ N(0, I) in 64-D and scores that rise along a known unit normal."""
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((N, D)).astype(np.float32)
    normal = rng.standard_normal(D)
    normal /= np.linalg.norm(normal)
    scores = 1 / (1 + np.exp(-(5 * latents @ normal + rng.standard_normal(N))))
    return latents, scores, normal


def test_fit_boundary_recovers_the_planted_normal(planted):
    latents, scores, normal = planted
    boundary = fit_boundary(latents, scores)
    assert boundary.normal.shape == (1, D) and boundary.normal.dtype == np.float32
    assert np.linalg.norm(boundary.normal) == pytest.approx(1, abs=1e-6)
    assert boundary.normal[0] @ normal > 0.95  # right direction, towards higher scores
    assert boundary.val_accuracy > 0.95 and boundary.train_accuracy > 0.95
    flipped = fit_boundary(latents, -scores)
    assert flipped.normal[0] @ normal < -0.95


def test_fit_boundary_keeps_the_top_and_bottom_two_percent_split_70_30(planted):
    latents, scores, _ = planted
    boundary = fit_boundary(latents, scores)
    n_side = int(N * 0.02)  # 200
    assert boundary.n_samples == N
    assert boundary.n_used == 2 * n_side
    assert boundary.n_train == 2 * int(n_side * 0.7)
    assert boundary.n_val == boundary.n_used - boundary.n_train

    # Only the kept samples matter: scrambling every other latent changes nothing.
    top, bottom = extreme_indices(scores, 0.02)
    assert len(top) == len(bottom) == n_side
    assert scores[top].min() >= np.sort(scores)[-n_side] and scores[bottom].max() <= np.sort(scores)[n_side - 1]
    middle = np.setdiff1d(np.arange(N), np.concatenate([top, bottom]))
    scrambled = latents.copy()
    scrambled[middle] = np.random.default_rng(5).standard_normal((len(middle), D)) * 10
    np.testing.assert_array_equal(fit_boundary(scrambled, scores).normal, boundary.normal)


def test_fit_boundary_is_deterministic_for_a_seed(planted):
    latents, scores, _ = planted
    first, again = fit_boundary(latents, scores, seed=3), fit_boundary(latents, scores, seed=3)
    np.testing.assert_array_equal(first.normal, again.normal)
    assert first.intercept == again.intercept and first.val_accuracy == again.val_accuracy
    assert not np.array_equal(fit_boundary(latents, scores, seed=4).normal, first.normal)


def test_conditional_normal_leaves_the_other_attributes_linear_scores_unchanged():
    # Two attributes whose true normals share a component: the plain boundary of the first also moves the
    # second attribute's score; its conditional twin moves only its own.
    rng = np.random.default_rng(1)
    latents = rng.standard_normal((N, D))
    first, second = np.zeros(D), np.zeros(D)
    first[:2], second[1:3] = [0.6, 0.8], [0.8, 0.6]
    scores = [1 / (1 + np.exp(-(4 * latents @ n + rng.standard_normal(N)))) for n in (first, second)]
    fitted = [fit_boundary(latents, s, ratio=0.1).normal for s in scores]
    assert abs(fitted[0][0] @ second) > 0.4  # the plain edit is entangled
    twin = conditional_normal(fitted[0], fitted[1])
    assert twin.shape == (1, D) and twin.dtype == np.float32 and np.linalg.norm(twin) == pytest.approx(1, abs=1e-6)
    assert abs(twin[0] @ fitted[1][0]) < 1e-6  # orthogonal to the condition it was given
    assert abs(twin[0] @ second) < 0.1  # so it leaves the second attribute's true score nearly alone
    assert twin[0] @ first > 0.5  # and still raises the first
    # Conditions that repeat one another count once; no conditions: the normal itself.
    repeated = np.concatenate([fitted[1], 2 * fitted[1]])
    np.testing.assert_allclose(conditional_normal(fitted[0], repeated), twin, atol=1e-6)
    np.testing.assert_allclose(conditional_normal(fitted[0], np.zeros((0, D))), fitted[0], atol=1e-6)
    with pytest.raises(ValueError, match="lies in the span"):
        conditional_normal(fitted[0], np.concatenate([fitted[0], fitted[1]]))


def test_too_few_samples_say_how_many_are_needed(planted):
    latents, scores, _ = planted
    with pytest.raises(ValueError, match="at least 500 samples"):
        fit_boundary(latents[:300], scores[:300])
    with pytest.raises(ValueError, match="scores must have shape"):
        fit_boundary(latents, scores[:-1])
    with pytest.raises(ValueError, match="overlap"):
        fit_boundary(latents, np.zeros(N))


def test_saved_boundary_is_the_official_npy(planted, tmp_path):
    latents, scores, _ = planted
    normal = fit_boundary(latents, scores).normal
    path = tmp_path / "directions" / "smiling.npy"
    save_boundary(path, normal)
    array = np.load(path)
    assert array.shape == (1, D) and array.dtype == np.float32
    np.testing.assert_array_equal(array, normal)
    assert torch.from_numpy(np.load(path)).shape == (1, D)  # how the official code reads it
    np.testing.assert_array_equal(load_boundary(path, w_dim=D), normal)
    assert [p.name for p in path.parent.iterdir()] == ["smiling.npy"]  # no partial file left


def test_load_boundary_reads_float64_and_flat_arrays_unnormalised(tmp_path):
    values = np.arange(1, 9, dtype=np.float64) / 3
    np.save(tmp_path / "flat.npy", values)
    loaded = load_boundary(tmp_path / "flat.npy")
    assert loaded.shape == (1, 8) and loaded.dtype == np.float32
    np.testing.assert_allclose(loaded[0], values, rtol=1e-6)


def test_load_boundary_errors_name_the_file_and_what_was_expected(tmp_path):
    missing = tmp_path / "missing.npy"
    with pytest.raises(FileNotFoundError, match="missing.npy.*expected"):
        load_boundary(missing)
    wrong_shape = tmp_path / "wrong_shape.npy"
    np.save(wrong_shape, np.ones((2, 8), np.float32))
    with pytest.raises(BoundaryFileError, match=r"wrong_shape.npy: shape \[2, 8\]; expected .*\[1, D\]"):
        load_boundary(wrong_shape)
    save_boundary(tmp_path / "eight.npy", np.ones(8))
    with pytest.raises(ValueError, match=r"eight.npy: D = 8; expected a boundary of shape \[1, 512\]"):
        load_boundary(tmp_path / "eight.npy", w_dim=512)
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match="corrupt.npy: not a readable .npy"):
        load_boundary(corrupt)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickled.npy"):
        load_boundary(pickled)
    integers = tmp_path / "integers.npy"
    np.save(integers, np.ones((1, 8), np.int64))
    with pytest.raises(ValueError, match="dtype int64"):
        load_boundary(integers)


def test_projection_std_is_in_units_of_the_normal():
    rng = np.random.default_rng(1)
    normal = rng.standard_normal((1, 16))
    normal /= np.linalg.norm(normal)
    latents = 3 * rng.standard_normal((20_000, 16))
    assert projection_std(latents, normal) == pytest.approx(3, rel=0.03)
    assert projection_std(latents, 2 * normal) == pytest.approx(projection_std(latents, normal) / 2)
    with pytest.raises(ValueError, match="normal"):
        projection_std(latents, normal[:, :8])


def test_flat_styles_round_trip_and_render_like_the_ws():
    G = make_generator("T")
    ws = G.mapping(torch.randn(2, G.z_dim))
    styles = G.synthesis.styles(ws)
    flat, layout = flatten_styles(styles)
    assert "input" not in dict(layout)
    assert [name for name, _ in layout] == list(G.synthesis.layer_names)
    assert flat.shape == (2, sum(getattr(G.synthesis, name).in_channels for name in G.synthesis.layer_names))
    back = unflatten_styles(flat, layout, input_style=styles["input"])
    assert list(back) == list(styles)
    with torch.no_grad():
        torch.testing.assert_close(G.synthesis(styles=back), G.synthesis(ws=ws))
    assert "input" not in unflatten_styles(flat, layout)
    with pytest.raises(ValueError, match="for this layout"):
        unflatten_styles(flat[:, 1:], layout)


def test_style_direction_finds_the_planted_channels():
    rng = np.random.default_rng(2)
    n, channels = 5000, 500
    scores = rng.standard_normal(n)
    styles = rng.standard_normal((n, channels)) * rng.uniform(0.5, 2, channels)
    planted = {17: 0.8, 230: -0.6, 444: 0.5}  # channel -> correlation with the score
    for channel, rho in planted.items():
        styles[:, channel] = 4 * (rho * scores + np.sqrt(1 - rho**2) * rng.standard_normal(n))
    direction = style_direction(styles.astype(np.float32), scores, top_k=5)

    assert list(direction.channels[:3]) == [17, 230, 444]
    assert direction.delta.shape == (channels,) and direction.delta.dtype == np.float32
    assert np.flatnonzero(direction.delta).tolist() == sorted(direction.channels.tolist())
    assert np.sign(direction.relevance[:3]).tolist() == [1, -1, 1]
    std = styles.std(axis=0)
    scaled = direction.relevance / np.abs(direction.relevance).max()
    np.testing.assert_allclose(direction.delta[direction.channels], scaled * std[direction.channels], rtol=1e-5)
    assert direction.delta[17] == pytest.approx(std[17], rel=1e-5)  # most relevant channel: one std
    with pytest.raises(ValueError, match="top_k"):
        style_direction(styles, scores, top_k=0)


def test_more_attributes_than_w_dimensions_skip_the_conditional_twins(tmp_path, caplog):
    # Three attributes in a 2-D W: the other two normals span all of W, so no conditional direction is left;
    # direction finding writes the fitted ones and says why the twins are missing, instead of failing the job.
    import pandas as pd

    from sg3pipe.editing.direction_finding import DirectionSettings, find_directions

    rng = np.random.default_rng(2)
    w = rng.standard_normal((300, 2)).astype(np.float32)
    s = rng.standard_normal((300, 6)).astype(np.float32)
    samples = pd.DataFrame({f"score_a{k}": 1 / (1 + np.exp(-(w @ rng.standard_normal(2)))) for k in range(3)})
    with caplog.at_level("WARNING"):
        table = find_directions(
            samples, {"w": w, "s": s}, tmp_path, DirectionSettings(ratio=0.2, style_top_k=2, conditional=True)
        )
    assert sorted(table["name"]) == ["a0", "a0.s", "a1", "a1.s", "a2", "a2.s"]
    assert caplog.text.count(".cond not written") == 3
