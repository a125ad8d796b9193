"""Several face tracks in the per-frame tables (sg3pipe.tracks): the frame-major layout of the frames table, each
track smoothed on its own, and the run summary's row per track."""

import numpy as np
import pytest

from sg3pipe.faces.alignment import quad_axes
from sg3pipe.frames import AlignSettings, FaceTrack, frame_columns
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.metrics.summary import summary_frame
from sg3pipe.synth.photo_clip import photo_landmarks
from sg3pipe.temporal import SmoothingSettings, smooth_video
from sg3pipe.tracks import track_name, track_rows
from sg3pipe.transforms import make_transform


def test_track_rows_read_the_frame_major_layout_and_refuse_any_other():
    rows = track_rows(np.array([0, 1, 2] * 4))
    assert [r.tolist() for r in rows] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    assert [r.tolist() for r in track_rows(np.zeros(5, int))] == [[0, 1, 2, 3, 4]]
    assert track_name(1) == "face1"
    for bad in ([0, 0, 1, 1], [0, 1, 2, 0, 1], [1, 0, 1, 0]):
        with pytest.raises(ValueError, match="repeat 0..1|repeat 0..2"):
            track_rows(np.array(bad))


def two_face_track(n: int = 12) -> FaceTrack:
    """Pass 1 of a clip with two faces: the astronaut's landmarks at two places, the second face absent in its
    first 3 frames (no_face) and rolling by 1 degree a frame."""
    from skimage import data

    base = photo_landmarks(data.astronaut()) * 0.5  # a face of ~100 px
    rng = np.random.default_rng(0)
    first = base[None] + np.array([20.0, 40.0]) + rng.normal(0, 0.3, (n, 68, 2))
    centre = base.mean(axis=0)
    angles = np.deg2rad(np.arange(n))
    rotation = np.stack([[np.cos(angles), -np.sin(angles)], [np.sin(angles), np.cos(angles)]]).transpose(2, 0, 1)
    second = np.einsum("nij,kj->nki", rotation, base - centre) + centre + np.array([300.0, 60.0])
    second[:3] = np.nan
    found = ~np.isnan(np.stack([first, second])).any(axis=(2, 3))
    return FaceTrack(
        frames=np.arange(n),
        source_frames=np.arange(n),
        times_s=np.arange(n) / 25.0,
        landmarks=np.stack([first, second]),
        boxes=np.where(found[..., None], 1.0, np.nan) * np.ones((2, n, 4)),
        scores=np.where(found, 1.0, np.nan),
        n_faces=found.sum(axis=0),
    )


def test_frame_columns_give_each_track_its_rows_window_and_transforms():
    track = two_face_track()
    align = AlignSettings(size=64)
    columns = frame_columns(track, align, "two.mp4")
    assert columns["track"].tolist() == [0, 1] * 12
    assert columns["frame"].tolist() == np.repeat(np.arange(12), 2).tolist()
    assert columns["status"][1::2].tolist() == ["no_face"] * 3 + ["ok"] * 9
    assert (columns["status"][0::2] == "ok").all()
    assert columns["n_faces"].tolist() == np.repeat([1, 1, 1] + [2] * 9, 2).tolist()
    # Each track on its own is what one face alone gives, row for row.
    for t in range(2):
        alone = FaceTrack(track.frames, track.source_frames, track.times_s, track.landmarks[t : t + 1],
                          track.boxes[t : t + 1], track.scores[t : t + 1], track.n_faces)  # fmt: skip
        single = frame_columns(alone, align, "two.mp4")
        for name in ("landmarks", "aligned_quad", "crop_quad", "angle_deg", "tx", "ty", "transform", "status"):
            np.testing.assert_array_equal(columns[name][t::2], single[name], err_msg=name)
    windows = columns["crop_quad"]
    assert np.linalg.norm(quad_axes(windows[0])[0] - quad_axes(windows[1])[0]) > 200  # two windows, far apart
    np.testing.assert_allclose(np.diff(columns["angle_deg"][7::2]), -1.0, atol=0.05)  # the second face rolls


def test_each_track_is_smoothed_alone(tmp_path):
    n, count, shape = 20, 2, (4, 3)
    rng = np.random.default_rng(1)
    tracks = np.tile(np.arange(count), n)
    ws = rng.normal(size=(n * count, *shape)).astype(np.float32)
    ws[1::2] += 100.0  # a second face far from the first: any mixing shows
    inverted = np.ones(n * count, bool)
    inverted[[3, 10]] = False  # one frame of each track
    transforms = make_transform(rng.normal(0, 5, n * count), rng.normal(0, 0.01, n * count), 0.0, 1.0)
    frames = {"frame": np.repeat(np.arange(n), count), "track": tracks, "transform": transforms.reshape(-1, 9)}
    latents = {"frame": frames["frame"], "track": tracks, "status": np.where(inverted, "ok", "unusable"),
               "inverted": inverted, "latent": ws.reshape(len(ws), -1)}  # fmt: skip
    write_table(tmp_path / "frames.parquet", frames, {"shapes": {"transform": [3, 3]}})
    write_table(tmp_path / "latents.parquet", latents, {"shapes": {"latent": list(shape)}})
    settings = SmoothingSettings(fine_rows=(2, 3))
    meta = smooth_video(tmp_path / "frames.parquet", tmp_path / "latents.parquet", tmp_path / "both.parquet", settings)
    both, _ = read_table(tmp_path / "both.parquet")
    assert len(meta["jitter"]) == count and both["track"].tolist() == tracks.tolist()
    for t in range(count):
        rows = slice(t, None, count)
        alone_of = {"track": np.zeros(n, np.int64)}  # the track's rows as a one-face video
        write_table(
            tmp_path / "f.parquet",
            {**{k: v[rows] for k, v in frames.items()}, **alone_of},
            {"shapes": {"transform": [3, 3]}},
        )
        write_table(
            tmp_path / "l.parquet",
            {**{k: v[rows] for k, v in latents.items()}, **alone_of},
            {"shapes": {"latent": list(shape)}},
        )
        alone_meta = smooth_video(tmp_path / "f.parquet", tmp_path / "l.parquet", tmp_path / "alone.parquet", settings)
        alone, _ = read_table(tmp_path / "alone.parquet")
        for name, column_shape in (("latent", shape), ("transform", (3, 3))):
            np.testing.assert_array_equal(column_array(both, name, column_shape)[rows],
                                          column_array(alone, name, column_shape), err_msg=name)  # fmt: skip
        assert meta["jitter"][t] == alone_meta["jitter"][0]


def test_summary_has_a_row_per_track(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    usable = np.array([True, True, True, False, True, True])
    l2 = np.array([1.0, 10.0, 3.0, 99.0, 5.0, 30.0])
    summaries = [{"frames": 3, "usable_frames": 3}, {"frames": 3, "usable_frames": 2}]
    write_table(folder / "metrics.parquet", {"frame": np.repeat(np.arange(3), 2), "track": np.tile([0, 1], 3),
                "status": np.where(usable, "ok", "unusable"), "usable": usable, "l2.pti": l2},
                {"summary": summaries})  # fmt: skip
    table = summary_frame([folder / "metrics.parquet"])
    assert table["video"].tolist() == ["clip", "clip"] and table["track"].tolist() == [0, 1]
    assert table["usable_frames"].tolist() == [3, 2]
    np.testing.assert_allclose(table["mean.l2.pti"], [3.0, 20.0])  # track 1's unusable 99 left out
