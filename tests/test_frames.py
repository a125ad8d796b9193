"""The frames stage (sg3pipe.frames): statuses, containers, crop windows, and accuracy against ground truth."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from skimage import data

from sg3pipe.faces.alignment import ffhq_quad
from sg3pipe.faces.crop_transforms import crop_transforms, quad_matrix
from sg3pipe.frames import (
    COLUMNS,
    AlignSettings,
    IngestSettings,
    LandmarkSettings,
    NoUsableFaceError,
    build_frames,
    fill_gaps,
    prefetch,
    write_pair,
)
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.settings import settings
from sg3pipe.transforms import make_transform, transform_params
from sg3pipe.video.decode import read_all_frames, read_frames
from sg3pipe.video.errors import VideoError
from sg3pipe.video.probe import VideoInfo
from sg3pipe.video.writer import write_video

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "samples" / "astronaut.mp4"
ASTRONAUT_TRUTH = ROOT / "samples" / "astronaut.truth.parquet"


def run(tmp_path, video, config=None, **options):
    """build_frames into tmp_path (64-px crops unless ``config`` sets align.size); returns the table, its metadata
    and the two containers' frames."""
    out = {name: tmp_path / name for name in ("frames.parquet", "aligned.mkv", "crops.mkv")}
    config = {**(config or {})}
    config["align"] = {"size": 64, **config.get("align", {})}
    build_frames(video, out["frames.parquet"], out["aligned.mkv"], out["crops.mkv"], config, **options)
    table, meta = read_table(out["frames.parquet"])
    aligned = read_all_frames(out["aligned.mkv"])
    crops = read_all_frames(out["crops.mkv"])
    return table, meta, aligned, crops


def test_fill_gaps_statuses():
    lm = np.arange(14, dtype=float)[:, None, None] * np.ones((14, 68, 2))
    faceless = [0, 1, 4, 5, 8, 9, 10, 13]  # start gap 2, inner gap 2, inner gap 3, end gap 1
    lm[faceless] = np.nan
    filled, status = fill_gaps(lm, max_gap=2)
    assert list(status) == ["no_face"] * 2 + ["ok"] * 2 + ["interpolated"] * 2 + ["ok"] * 2 + ["unusable"] * 3 + [
        "ok"
    ] * 2 + ["no_face"]
    np.testing.assert_allclose(filled[4:6, 0, 0], [4.0, 5.0])  # linear between frames 3 and 6
    assert np.isnan(filled[[0, 8, 13]]).all()


def test_settings_defaults_agree_with_the_schema():
    schema = yaml.safe_load((ROOT / "config" / "schemas" / "config.schema.yaml").read_text())
    for key, cls in (("ingest", IngestSettings), ("landmarks", LandmarkSettings), ("align", AlignSettings)):
        props = schema["properties"][key]["properties"]
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        assert defaults == {name: prop["default"] for name, prop in props.items()}, key
    with pytest.raises(ValueError, match="unknown AlignSettings keys"):
        settings(AlignSettings, {"sise": 64})
    with pytest.raises(ValueError, match="align.size is not set"):
        settings(AlignSettings, {})


def test_decoded_batches_hold_a_bounded_number_of_bytes_at_any_frame_size():
    def frames_per_batch(width, height, **ingest):
        info = VideoInfo("clip.mp4", width, height, 25.0, 100, 4.0, 0, False, False, "h264", "yuv420p")
        return IngestSettings(**ingest).frames_per_batch(info)

    assert frames_per_batch(64, 64) == 64  # small frames: batch_size decides
    assert frames_per_batch(512, 512) == 10  # 8 MiB of 512x512 frames
    assert frames_per_batch(1920, 1080) == 1 and frames_per_batch(3840, 2160) == 1  # never fewer than one
    assert frames_per_batch(512, 512, max_batch_mb=64) == 64
    assert frames_per_batch(512, 512, batch_size=4) == 4


@pytest.fixture(scope="module")
def astronaut_run(tmp_path_factory):
    return run(tmp_path_factory.mktemp("astronaut"), ASTRONAUT)


def test_astronaut_with_dlib_matches_the_camera(astronaut_run):
    """The accuracy bar: median angle error <= 0.5 degrees, translation <= 0.5 % of the crop width."""
    table, meta, aligned, crops = astronaut_run
    truth, _ = read_table(ASTRONAUT_TRUTH)
    assert list(table.columns) == list(COLUMNS) and len(table) == len(truth) == 100
    assert (table["status"] == "ok").all() and not table["multiple_faces"].any()
    assert aligned.shape == crops.shape == (100, 64, 64, 3)
    window = column_array(table, "crop_quad", (4, 2))[0].astype(float)
    expected = crop_transforms(ffhq_quad(column_array(truth, "landmarks", (68, 2)).astype(float)), window, True)
    angle_error = np.abs(table["angle_deg"] - expected["angle_deg"])
    shift_error = np.hypot(table["tx"] - expected["tx"], table["ty"] - expected["ty"]) * 100
    # measured: median 0.17 degrees and 0.08 % (max 0.86 degrees, 0.19 %)
    assert np.median(angle_error) <= 0.5
    assert np.median(shift_error) <= 0.5
    assert meta["provenance"]["models"]["predictor"]["sha256"]
    assert meta["shapes"]["landmarks"] == [68, 2] and meta["status_counts"]["ok"] == 100


def test_transform_math_recovers_the_camera_from_true_landmarks(tmp_path):
    """With the true landmarks (table backend) the transforms give back the camera to < 0.05 deg and 0.05 %."""
    config = {"landmarks": {"backend": "table", "table": str(ASTRONAUT_TRUTH)}, "align": {"size": 32}}
    table, _, _, _ = run(tmp_path, ASTRONAUT, config)
    truth, _ = read_table(ASTRONAUT_TRUTH)
    cameras = column_array(truth, "transform", (3, 3)).astype(float)
    # the photo's own quad: frame 0's true landmarks moved back by frame 0's camera
    to_unit = np.array([[1 / 512, 0, 0.5 / 512 - 0.5], [0, 1 / 512, 0.5 / 512 - 0.5], [0, 0, 1]])
    to_photo = np.linalg.inv(to_unit) @ np.linalg.inv(cameras[0]) @ to_unit
    landmarks0 = column_array(truth, "landmarks", (68, 2))[0].astype(float)
    photo_quad = quad_matrix(ffhq_quad(landmarks0 @ to_photo[:2, :2].T + to_photo[:2, 2]))
    m = make_transform(table["angle_deg"], table["tx"], table["ty"], table["scale"])
    window = quad_matrix(column_array(table, "crop_quad", (4, 2))[0].astype(float))
    found = to_unit @ window @ m @ np.linalg.inv(photo_quad) @ np.linalg.inv(to_unit)
    angle, tx, ty, scale = transform_params(found)
    # measured: 8e-6 degrees, 8e-6 % (float32 landmarks)
    assert np.abs(angle - truth["angle_deg"]).max() < 0.05
    assert np.hypot(tx - truth["tx"], ty - truth["ty"]).max() * 100 < 0.05
    assert np.abs(scale / truth["scale"] - 1).max() < 5e-4


def test_clip_options_and_source_frames(tmp_path):
    config = {"landmarks": {"backend": "table"}, "align": {"size": 16}}
    table, _, aligned, _ = run(tmp_path, ASTRONAUT, config, landmarks=str(ASTRONAUT_TRUTH), start_s=0.2, max_frames=10)
    truth, _ = read_table(ASTRONAUT_TRUTH)
    assert list(table["frame"]) == list(range(10)) and list(table["source_frame"]) == list(range(5, 15))
    np.testing.assert_allclose(table["time_s"], np.arange(5, 15) / 25.0)
    np.testing.assert_allclose(
        column_array(table, "landmarks", (68, 2)), column_array(truth, "landmarks", (68, 2))[5:15], atol=1e-4
    )
    assert len(aligned) == 10


@pytest.fixture(scope="module")
def synthetic_clip(tmp_path_factory):
    """16 frames of a synthetic face (sg3pipe.synth.renderer) moving, turning, zooming and smiling."""
    import torch

    from sg3pipe.synth.params import with_values
    from sg3pipe.synth.renderer import pose_matrices, render, sample_params

    t = np.linspace(0.0, 1.0, 16)
    params = with_values(
        sample_params(1, 3).repeat(16, 1),
        angle_deg=torch.tensor(12 * np.sin(5 * t)),
        tx=torch.tensor(0.08 * np.cos(4 * t)),
        ty=torch.tensor(-0.05 * t),
        scale=torch.tensor(0.7 + 0.2 * t),
        smile=torch.tensor(t),
    )
    out = render(params, 64)
    folder = tmp_path_factory.mktemp("synthetic")
    frames = ((out.images.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    write_video(folder / "synthetic.mkv", frames, 25.0, codec="lossless")
    truth = folder / "synthetic.truth.parquet"
    write_table(truth, {"frame": np.arange(16), "landmarks": out.landmarks.numpy().astype(np.float64)}, {})
    return folder / "synthetic.mkv", truth, params, pose_matrices(params).numpy()


def pose_errors(table, params, poses, width):
    """Max errors of the poses recovered from a frames table: degrees, % of the frame width, scale ratio.

    The aligned quad of a frame is its pose applied to the FFHQ quad of its own canonical (expression-
    dependent) landmarks, so window @ M @ inverse(canonical quad) must be the pose.
    """
    import torch

    from sg3pipe.synth.renderer import canonical_landmarks

    canonical = quad_matrix(ffhq_quad(canonical_landmarks(torch.as_tensor(params)).double().numpy()))
    to_unit = np.array([[1 / width, 0, 0.5 / width - 0.5], [0, 1 / width, 0.5 / width - 0.5], [0, 0, 1]])
    window = to_unit @ quad_matrix(column_array(table, "crop_quad", (4, 2))[0].astype(float))
    m = make_transform(table["angle_deg"], table["tx"], table["ty"], table["scale"])
    angle, tx, ty, scale = transform_params(window @ m @ np.linalg.inv(canonical))
    true_angle, true_tx, true_ty, true_scale = transform_params(poses)
    return (
        np.abs(angle - true_angle).max(),
        np.hypot(tx - true_tx, ty - true_ty).max() * 100,
        np.abs(scale / true_scale - 1).max(),
    )


def test_transform_math_recovers_the_synthetic_pose(tmp_path, synthetic_clip):
    """From the renderer's true landmarks (table backend) the transforms give back each frame's pose."""
    video, truth, params, poses = synthetic_clip
    table, _, aligned, _ = run(tmp_path, video, {"align": {"size": 64}}, landmarks=str(truth))
    angle, shift, scale = pose_errors(table, params, poses, 64)
    # measured: 3e-6 degrees, 2e-6 %, 1e-7 (float32 landmarks)
    assert angle < 0.05 and shift < 0.05 and scale < 5e-4
    assert (table["status"] == "ok").all() and len(aligned) == 16


@pytest.mark.parametrize("clip", ["synth_a", "synth_b"])
def test_transform_math_on_the_bundled_synthetic_samples(tmp_path, clip):
    """On the synthetic samples (table backend) the transform math errs by < 0.05 deg and 0.05 %."""
    truth_path = ROOT / "samples" / f"{clip}.truth.parquet"
    truth, meta = read_table(truth_path)
    config = {"landmarks": {"backend": "table", "table": str(truth_path)}, "align": {"size": 32}}
    table, _, aligned, _ = run(tmp_path, ROOT / "samples" / f"{clip}.mp4", config)
    assert len(table) == len(truth) and (table["status"] == "ok").all()
    params = column_array(truth, "params", (len(meta["param_names"]),))
    poses = column_array(truth, "transform", (3, 3)).astype(float)
    angle, shift, scale = pose_errors(table, params, poses, meta["resolution"])
    # measured: 1.3e-5 degrees, 3e-6 %
    assert angle < 0.05 and shift < 0.05 and scale < 5e-4


@pytest.fixture(scope="module")
def gappy_video(tmp_path_factory):
    """24 frames of 256 x 256 (a face 87 px wide, drifting left): faceless frames 0-6, 15-16 and 22-23."""
    photo = data.astronaut()
    frames = np.stack([photo[:256, 96 + 2 * k : 352 + 2 * k] for k in range(24)])
    frames[[0, 1, 2, 3, 4, 5, 6, 15, 16, 22, 23]] = 90
    path = tmp_path_factory.mktemp("gappy") / "gappy.mkv"
    write_video(path, frames, 25.0, codec="lossless")
    return path


@pytest.mark.parametrize("crop_mode", ["robust", "first_frame"])
def test_faceless_frames_keep_their_rows(tmp_path, gappy_video, crop_mode):
    table, meta, aligned, crops = run(tmp_path, gappy_video, {"align": {"crop_mode": crop_mode}})
    expected = ["unusable"] * 7 + ["ok"] * 8 + ["interpolated"] * 2 + ["ok"] * 5 + ["no_face"] * 2
    assert list(table["status"]) == expected
    assert meta["status_counts"] == {"ok": 13, "interpolated": 2, "no_face": 2, "unusable": 7}
    assert len(aligned) == len(crops) == 24
    usable = table["status"].isin(["ok", "interpolated"]).to_numpy()
    assert aligned[~usable].max() == 0 and aligned[usable].mean(axis=(1, 2, 3)).min() > 50
    lm = column_array(table, "landmarks", (68, 2))
    np.testing.assert_allclose(lm[15], lm[14] + (lm[17] - lm[14]) / 3, atol=1e-3)
    assert np.isnan(lm[~usable]).all() and np.isnan(table["angle_deg"][~usable]).all()
    window = column_array(table, "crop_quad", (4, 2))[0]
    if crop_mode == "first_frame":  # frame 7, the first with a face, is the official rule's reference
        np.testing.assert_allclose(window, column_array(table, "aligned_quad", (4, 2))[7], atol=1e-4)
        np.testing.assert_allclose(table["transform"][7], np.eye(3).reshape(-1), atol=1e-5)
    assert crops[:7].mean() == pytest.approx(90, abs=1)  # the crop of a faceless frame is still its crop


def test_video_without_a_face_fails_with_a_clear_message(tmp_path):
    path = tmp_path / "empty_room.mkv"
    write_video(path, np.full((5, 128, 128, 3), 70, np.uint8), 25.0, codec="lossless")
    with pytest.raises(NoUsableFaceError, match=r"empty_room\.mkv: no usable face in any of its 5 frames.*upsample"):
        run(tmp_path, path)
    assert not (tmp_path / "frames.parquet").exists() and not (tmp_path / "aligned.mkv").exists()


def test_unreadable_video_fails_with_the_video_error(tmp_path):
    path = tmp_path / "zero.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoError, match="zero.mp4"):
        run(tmp_path, path)


def test_table_backend_needs_a_table(tmp_path):
    with pytest.raises(ValueError, match="needs a table"):
        run(tmp_path, ASTRONAUT, {"landmarks": {"backend": "table"}})


def test_write_pair_leaves_nothing_when_the_frames_fail(tmp_path):
    def pairs():
        for _ in range(3):
            yield np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
        raise RuntimeError("decode broke")

    with pytest.raises(RuntimeError, match="decode broke"):
        write_pair(tmp_path / "a.mkv", tmp_path / "b.mkv", pairs(), 25.0)
    assert not list(tmp_path.iterdir())
    write_pair(tmp_path / "a.mkv", tmp_path / "b.mkv", ((np.full((8, 8, 3), k, np.uint8),) * 2 for k in range(4)), 25.0)
    assert [len(list(read_frames(tmp_path / name))[0].images) for name in ("a.mkv", "b.mkv")] == [4, 4]


def test_prefetch_keeps_order_and_raises_the_readers_error():
    assert list(prefetch(iter(range(10)))) == list(range(10))

    def broken():
        yield 1
        raise OSError("pipe closed")

    with pytest.raises(OSError, match="pipe closed"):
        list(prefetch(broken()))


def test_prefetch_stops_its_reader_when_the_consumer_stops():
    closed = []

    def endless():
        try:
            k = 0
            while True:
                yield k
                k += 1
        finally:
            closed.append(True)

    items = prefetch(endless())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert closed == [True]


@pytest.mark.parametrize("max_faces", [1, 3])
def test_face_track_boxes_replace_the_detector(tmp_path, gappy_video, max_faces):
    """A manifest face track: landmarks on its boxes only; frames without a box have no face. It pins one face
    however many faces.max_faces allows."""
    rows = [(k, 73.0 - 2 * k, 77.0, 177.0 - 2 * k, 181.0) for k in range(9, 15)]  # HOG's box, drifting left
    track = tmp_path / "track.tsv"
    track.write_text("frame\tx0\ty0\tx1\ty1\n" + "".join("\t".join(map(str, row)) + "\n" for row in rows))
    table, _, aligned, _ = run(tmp_path, gappy_video, {"faces": {"max_faces": max_faces}}, face_track=str(track))
    assert (table["track"] == 0).all() and len(table) == 24
    assert list(table["status"][9:15]) == ["ok"] * 6 and (table["status"][:7] == "unusable").all()
    assert list(table["n_faces"][8:16]) == [0, 1, 1, 1, 1, 1, 1, 0]
    np.testing.assert_allclose(column_array(table, "bbox", (4,))[9], rows[0][1:])
    eyes = column_array(table, "landmarks", (68, 2))[9, 36:48]
    assert (eyes[:, 0] > 73 - 18).all() and (eyes[:, 0] < 177 - 18).all()  # inside the box
    assert len(aligned) == 24
