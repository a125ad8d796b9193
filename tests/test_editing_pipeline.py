"""Direction finding end to end on a small generator: chunked sampling that resumes, fitted directions and their
files, edits of a video's latents (one row per frame, frames that were not inverted kept), the flip table."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
from generators import make_generator

from sg3pipe.editing.direction_finding import DirectionSettings, find_directions
from sg3pipe.editing.directions import load_boundary
from sg3pipe.editing.edits import EditSpec
from sg3pipe.editing.flips import describe_flips, flip_tables, flip_tables_by_readers
from sg3pipe.editing.sampling import SamplingSettings, join_chunks, sample_arrays, sample_to_chunks
from sg3pipe.editing.video_edits import edit_video, edited_images
from sg3pipe.io.tables import column_array, read_table, write_table


class BrightnessScorer:
    """A scorer with a known answer: 'bright' rises with the image's mean, 'red' with red over the rest."""

    names = ["bright", "red"]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        bright = torch.sigmoid(20 * images.mean(dim=(1, 2, 3)))
        red = torch.sigmoid(20 * (images[:, 0] - images[:, 1:].mean(1)).mean(dim=(1, 2)))
        return torch.stack([bright, red], dim=1)


class InvertedScorer(BrightnessScorer):
    """'bright' for dark images: it chooses the other side of every sample, and reads the same edits."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return super().__call__(-images)


@pytest.fixture(scope="module")
def G():
    return make_generator("R", resolution=16)


@pytest.fixture(scope="module")
def samples(G, tmp_path_factory):
    work = tmp_path_factory.mktemp("chunks")
    settings = SamplingSettings(n=600, chunk=250, batch=100)
    paths = sample_to_chunks(G, BrightnessScorer(), work, settings)
    out = work / "samples.parquet"
    join_chunks(paths, out)
    return work, settings, paths, out


def test_samples_are_chunked_and_resume_without_redoing_finished_chunks(G, samples):
    work, settings, paths, out = samples
    assert [p.name for p in paths] == ["chunk-00000.parquet", "chunk-00001.parquet", "chunk-00002.parquet"]
    table, meta = read_table(out)
    assert list(table["sample"]) == list(range(600))
    arrays = sample_arrays(table, meta)
    assert arrays["w"].shape == (600, G.w_dim) and arrays["z"].shape == (600, G.z_dim)
    assert arrays["s"].shape[0] == 600 and arrays["s"].shape[1] == sum(
        getattr(G.synthesis, n).in_channels for n in G.synthesis.layer_names
    )
    # An interruption: the last chunk is gone. The rerun redoes it alone, with the same numbers.
    kept = {p: os.stat(p).st_mtime_ns for p in paths[:2]}
    last = read_table(paths[2])[0]
    paths[2].unlink()
    again = sample_to_chunks(G, BrightnessScorer(), work, settings)
    assert {p: os.stat(p).st_mtime_ns for p in again[:2]} == kept
    np.testing.assert_array_equal(np.stack(read_table(again[2])[0]["w"]), np.stack(last["w"]))
    # A sample does not depend on the chunking.
    other = sample_to_chunks(G, BrightnessScorer(), work / "other", SamplingSettings(n=300, chunk=300, batch=7))
    first = read_table(other[0])[0]
    np.testing.assert_allclose(np.stack(first["w"])[:250], np.stack(read_table(paths[0])[0]["w"]), rtol=0, atol=1e-5)
    # Other settings: the chunk is redone, not reused.
    changed = sample_to_chunks(G, BrightnessScorer(), work, SamplingSettings(n=250, chunk=250, batch=100, seed=5))
    assert read_table(changed[0])[1]["made_with"]["settings"]["seed"] == 5


def test_directions_point_to_higher_scores_and_files_load(G, samples, tmp_path):
    _, _, _, out = samples
    table, meta = read_table(out)
    arrays = sample_arrays(table, meta)
    settings = DirectionSettings(ratio=0.05, style_top_k=8, conditional=True)
    directions = find_directions(table, arrays, tmp_path, settings)
    assert set(directions["name"]) == {"bright", "bright.s", "bright.cond", "red", "red.s", "red.cond"}
    w_rows = directions[(directions["space"] == "w") & (directions["source"] == "fitted")]
    assert (w_rows["val_accuracy"] >= 0.8).all(), w_rows  # 18 validation samples each
    for _, row in w_rows.iterrows():
        normal = load_boundary(tmp_path / row["file"], w_dim=G.w_dim)
        scores = table[f"score_{row['attribute']}"].to_numpy()
        # Moving along the boundary raises the score: projections correlate positively with the scores.
        assert np.corrcoef(arrays["w"] @ normal[0], scores)[0, 1] > 0.3
        assert row["std"] == pytest.approx(float(np.std(arrays["w"] @ normal[0])), rel=1e-4)
    # Each conditional twin is orthogonal to the other attribute's fitted normal, and listed with its own std.
    for attribute, other in (("bright", "red"), ("red", "bright")):
        twin = load_boundary(tmp_path / f"{attribute}.cond.npy", w_dim=G.w_dim)
        assert abs(twin[0] @ load_boundary(tmp_path / f"{other}.npy")[0]) < 1e-5
        row = directions[directions["name"] == f"{attribute}.cond"].iloc[0]
        assert (row["attribute"], row["source"]) == (attribute, "conditional") and np.isnan(row["val_accuracy"])
        assert row["std"] == pytest.approx(float(np.std(arrays["w"] @ twin[0])), rel=1e-4)
    s_delta = np.load(tmp_path / "bright.s.npy")
    assert s_delta.shape == (arrays["s"].shape[1],) and (s_delta != 0).sum() == 8
    listed, listed_meta = read_table(tmp_path / "directions.parquet")
    assert len(listed) == 6 and "standard deviations" in listed_meta["factor_units"]


def test_styleclip_directions_join_the_table_as_style_directions(samples, tmp_path):
    from sg3pipe.editing.directions import StyleDirection
    from sg3pipe.editing.video_edits import load_direction

    _, _, _, out = samples
    table, meta = read_table(out)
    arrays = sample_arrays(table, meta)
    delta = np.zeros(arrays["s"].shape[1], dtype=np.float32)
    delta[[4, 9]] = [0.5, -0.25]
    given = StyleDirection(delta=delta, channels=np.array([4, 9]), relevance=np.array([0.3, -0.15], np.float32))
    settings = DirectionSettings(ratio=0.05, style_top_k=8)
    directions = find_directions(table, arrays, tmp_path, settings, styleclip={"smile_text": given})
    row = directions[directions["name"] == "smile_text.s"].iloc[0]
    assert (row["space"], row["source"], row["channels"]) == ("s", "styleclip", "4 9")
    # the std of the coordinate along the delta (adding f * delta moves it by f)
    assert row["std"] == pytest.approx(float(np.std(arrays["s"] @ delta / (delta @ delta))), rel=1e-4)
    loaded, _ = load_direction(tmp_path, "smile_text.s")
    np.testing.assert_array_equal(loaded, delta)


@pytest.fixture(scope="module")
def video_latents(G, tmp_path_factory):
    """A 7-frame latents table whose frame 3 was not inverted (NaN latent)."""
    path = tmp_path_factory.mktemp("video") / "latents.parquet"
    ws = G.mapping(torch.randn(7, G.z_dim, generator=torch.Generator().manual_seed(1))).detach().numpy()
    ws[3] = np.nan
    status = np.array(["ok"] * 7, dtype=object)
    status[3] = "no_face"
    columns = {"frame": np.arange(7), "track": np.zeros(7, np.int64), "status": status, "inverted": status == "ok",
               "latent": ws}  # fmt: skip
    write_table(path, columns, {"shapes": {"latent": [G.num_ws, G.w_dim]}})
    return path, ws


@pytest.mark.parametrize("space", ["w", "s"])
def test_edit_video_keeps_every_frame_and_moves_by_the_factor(G, samples, video_latents, space, tmp_path):
    _, _, _, out = samples
    table, meta = read_table(out)
    find_directions(table, sample_arrays(table, meta), tmp_path, DirectionSettings(ratio=0.05, style_top_k=8))
    latents_path, ws = video_latents
    direction = "bright" if space == "w" else "bright.s"
    spec = EditSpec(name="b", direction=direction, space=space, factors=[-2.0, 0.0, 2.0], unit="std")
    meta = edit_video(latents_path, tmp_path, spec, tmp_path / "b.parquet", G)
    edited, _ = read_table(tmp_path / "b.parquet")
    assert list(edited["frame"]) == list(range(7)) and list(edited["status"])[3] == "no_face"
    std = meta["direction"]["std"]
    assert meta["raw_factors"] == pytest.approx([-2 * std, 0.0, 2 * std])
    if space == "w":
        values = column_array(edited, "latent_edited", (3, G.num_ws, G.w_dim))
        normal = load_boundary(tmp_path / "bright.npy")
        keep = [0, 1, 2, 4, 5, 6]
        moved = np.broadcast_to(2 * std * normal[0], ws[keep].shape)
        np.testing.assert_allclose(values[keep, 2] - ws[keep], moved, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(values[keep, 1], ws[keep])
        assert np.isnan(values[3]).all()
    else:
        values = column_array(edited, "styles", tuple(meta["shapes"]["styles"]))
        delta = np.load(tmp_path / "bright.s.npy")
        np.testing.assert_allclose(values[0, 2] - values[0, 1], 2 * std * delta, atol=1e-5)
        assert np.isnan(values[3]).all()
    # Rendering the edit: brighter at +2 std than at -2 std, on average over the frames given.
    images = edited_images(G, edited, meta, np.array([0, 1, 2]))
    assert images.shape == (3, 3, 3, 16, 16)
    assert images[:, 2].mean() > images[:, 0].mean()


def test_flip_table_diagonal_flips_more_than_chance(G, samples, tmp_path):
    _, _, _, out = samples
    table, meta = read_table(out)
    settings = DirectionSettings(ratio=0.05, style_top_k=8, conditional=True)
    find_directions(table, sample_arrays(table, meta), tmp_path, settings)
    flips = flip_tables(G, BrightnessScorer(), tmp_path, factor_std=3.0, n=64, settings=SamplingSettings(batch=32))
    assert list(flips.columns) == ["space", "source", "direction", "bright", "red"]
    assert (
        list(zip(flips["space"], flips["source"], strict=True))
        == [("w", "fitted")] * 2 + [("w", "conditional")] * 2 + [("s", "fitted")] * 2
    )
    for source in ("fitted", "conditional"):
        w_bright = flips[(flips["source"] == source) & (flips["space"] == "w") & (flips["direction"] == "bright")]
        assert w_bright.iloc[0]["bright"] >= 0.9
    text = describe_flips(flips, 3.0, 64)
    assert "space w, fitted directions" in text and "space w, conditional directions" in text
    # Several readers: each edit rendered once on both sides, each reader choosing its samples' sides, gives the
    # tables each reader gives alone; a reader that sees brightness the other way round gets other tables.
    inverted = InvertedScorer()
    both = flip_tables_by_readers(
        G, {"a": BrightnessScorer(), "b": inverted}, tmp_path, factor_std=3.0, n=64, settings=SamplingSettings(batch=32)
    )
    alone = flip_tables(G, inverted, tmp_path, factor_std=3.0, n=64, settings=SamplingSettings(batch=32))
    pd.testing.assert_frame_equal(both[both["reader"] == "a"].drop(columns="reader").reset_index(drop=True), flips)
    pd.testing.assert_frame_equal(both[both["reader"] == "b"].drop(columns="reader").reset_index(drop=True), alone)
    assert not alone.equals(flips)
