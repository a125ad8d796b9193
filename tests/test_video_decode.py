"""read_frames on small videos made by ffmpeg: which frames come out, when, upright and in RGB."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from video_fixtures import (
    HEIGHT,
    LEVEL0,
    LEVEL_STEP,
    VFR_TIMES,
    WIDTH,
    assert_upright,
    delay_video,
    frame_numbers,
    make_dropped_video,
    make_vfr_video,
    make_video,
    tag_rotation,
)

from sg3pipe.video.decode import read_frames
from sg3pipe.video.errors import VideoError
from sg3pipe.video.probe import probe_video
from sg3pipe.video.writer import write_video

# Stored picture for each rotation tag: the upright pattern turned the other way.
STORED = {90: "transpose=2", 180: "hflip,vflip", 270: "transpose=1"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """The module's test videos, made once: name -> path."""
    folder = tmp_path_factory.mktemp("decode")
    paths = {
        "cfr": make_video(folder / "cfr.mp4", audio=True),
        "vfr": make_vfr_video(folder / "vfr.mkv"),
        "dropped": make_dropped_video(folder / "dropped.mp4"),
        "gray": make_video(folder / "gray.mkv", vf="format=gray", output_args=("-c:v", "ffv1")),
        "10bit": make_video(folder / "10bit.mkv", output_args=("-c:v", "ffv1", "-pix_fmt", "yuv420p10le")),
        "avi": make_video(folder / "cfr.avi"),  # AVI packets carry no presentation times
    }
    for degrees, vf in STORED.items():
        stored = make_video(folder / f"stored{degrees}.mp4", vf=vf)
        paths[f"rot{degrees}"] = tag_rotation(stored, folder / f"rot{degrees}.mp4", degrees)
    return paths


def decode_all(path, **options):
    """All batches of read_frames concatenated: (indices [N], times_s [N], images [N, H, W, 3])."""
    batches = list(read_frames(path, **options))
    assert all(len(batch.indices) == len(batch.times_s) == len(batch.images) for batch in batches)
    return tuple(np.concatenate([getattr(b, name) for b in batches]) for name in ("indices", "times_s", "images"))


def test_whole_video(videos):
    info = probe_video(videos["cfr"])
    batches = list(read_frames(videos["cfr"], info, batch_size=16))
    assert [len(batch.images) for batch in batches] == [16, 16, 16, 2]
    indices, times_s, images = decode_all(videos["cfr"], info=info)
    assert images.dtype == np.uint8 and images.shape == (info.n_frames, HEIGHT, WIDTH, 3)
    assert indices.dtype == np.int64 and times_s.dtype == np.float64
    np.testing.assert_array_equal(indices, np.arange(50))
    np.testing.assert_allclose(times_s, np.arange(50) / 25)
    np.testing.assert_array_equal(frame_numbers(images), np.arange(50))
    assert_upright(images[0])
    assert_upright(images[-1])


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_video_comes_out_upright(videos, degrees):
    info = probe_video(videos[f"rot{degrees}"])
    assert info.rotation == degrees
    _, _, images = decode_all(videos[f"rot{degrees}"], info=info, max_frames=3)
    assert images.shape == (3, HEIGHT, WIDTH, 3)
    for image in images:
        assert_upright(image)


def test_time_range(videos):
    _, _, whole = decode_all(videos["cfr"])
    # 0.5 s lies between frames 12 (0.48 s) and 13 (0.52 s); 1.2 s is frame 30's time, excluded.
    indices, times_s, images = decode_all(videos["cfr"], start_s=0.5, end_s=1.2)
    np.testing.assert_array_equal(indices, np.arange(17))
    np.testing.assert_allclose(times_s, np.arange(13, 30) / 25)
    np.testing.assert_array_equal(images, whole[13:30])


def test_start_on_a_frame_time_and_max_frames(videos):
    indices, times_s, images = decode_all(videos["cfr"], start_s=1.0, max_frames=5)
    np.testing.assert_array_equal(frame_numbers(images), np.arange(25, 30))
    np.testing.assert_allclose(times_s, np.arange(25, 30) / 25)
    _, _, images = decode_all(videos["cfr"], start_s=1.0, end_s=1.2, max_frames=100)
    np.testing.assert_array_equal(frame_numbers(images), np.arange(25, 30))
    assert len(decode_all(videos["cfr"], max_frames=7)[0]) == 7


def test_variable_rate_on_a_constant_grid(videos):
    info = probe_video(videos["vfr"])
    indices, times_s, images = decode_all(videos["vfr"], info=info)
    assert len(images) == info.n_frames
    np.testing.assert_allclose(times_s, indices / info.fps)
    # Each grid frame shows the source frame on screen at its time, up to half a grid step.
    half_step = 0.5 / info.fps + 1e-6
    numbers = frame_numbers(images)
    next_times = np.append(VFR_TIMES, np.inf)[numbers + 1]
    assert (VFR_TIMES[numbers] <= times_s + half_step).all() and (next_times >= times_s - half_step).all()
    assert numbers[0] == 0 and numbers[-1] == 49
    # A range starting mid-video (a seek) gives exactly the same frames as the whole decode.
    indices, times_s, part = decode_all(videos["vfr"], info=info, start_s=2.0, end_s=3.0)
    first = int(np.ceil(2.0 * info.fps - 1e-3))
    np.testing.assert_array_equal(part, images[first : first + len(part)])
    np.testing.assert_allclose(times_s, (first + indices) / info.fps)
    assert times_s[0] >= 2.0 and times_s[-1] < 3.0 and times_s[0] - 2.0 < 1 / info.fps


def test_dropped_frames_repeat_the_frame_before(videos):
    indices, times_s, images = decode_all(videos["dropped"])
    np.testing.assert_allclose(times_s, np.arange(50) / 25)
    np.testing.assert_array_equal(frame_numbers(images), [*range(10), 9, 9, *range(12, 50)])


def test_other_decode_rate(videos):
    indices, times_s, images = decode_all(videos["cfr"], fps=10)
    assert len(images) == 20
    np.testing.assert_allclose(times_s, indices / 10)
    source_times = frame_numbers(images) / 25
    assert np.abs(source_times - times_s).max() <= 0.05 + 1e-6


@pytest.mark.parametrize("name", ["gray", "10bit"])
def test_pixel_formats_become_8_bit_rgb(videos, name):
    info = probe_video(videos[name])
    _, _, images = decode_all(videos[name], info=info)
    assert images.shape == (50, HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(frame_numbers(images), np.arange(50))
    if name == "gray":
        assert info.pix_fmt == "gray"
        assert (images[..., 0] == images[..., 1]).all() and (images[..., 1] == images[..., 2]).all()
        band = images[:, HEIGHT // 2, WIDTH // 2, 0].astype(int)
        assert np.abs(band - (LEVEL0 + LEVEL_STEP * np.arange(50))).max() <= 2
    else:
        assert info.pix_fmt == "yuv420p10le"
        assert_upright(images[0])


def test_video_without_presentation_times(videos):
    info = probe_video(videos["avi"])
    indices, times_s, images = decode_all(videos["avi"], info=info)
    assert len(images) == info.n_frames == 50
    np.testing.assert_array_equal(frame_numbers(images), np.arange(50))
    np.testing.assert_allclose(times_s, info.first_frame_s + indices / 25)


def test_lossless_container_round_trip(tmp_path):
    """The frame containers the pipeline writes read back bit-exact."""
    frames = np.random.default_rng(0).integers(0, 256, size=(12, 36, 52, 3), dtype=np.uint8)
    path = tmp_path / "crops.mkv"
    write_video(path, frames, fps=25, codec="lossless")
    _, _, images = decode_all(path, batch_size=5)
    np.testing.assert_array_equal(images, frames)


def test_video_starting_after_its_audio(tmp_path):
    source = make_video(tmp_path / "source.mkv", audio=True)
    late = delay_video(source, tmp_path / "late.mkv", 0.2)
    indices, times_s, images = decode_all(late, start_s=0.4, max_frames=3)
    np.testing.assert_allclose(times_s, [0.4, 0.44, 0.48], atol=1e-3)
    np.testing.assert_array_equal(frame_numbers(images), [5, 6, 7])


def test_stopping_early_ends_ffmpeg(videos, monkeypatch):
    started = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **options):
        started.append(real_popen(*args, **options))
        return started[-1]

    info = probe_video(videos["cfr"])
    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    frames = read_frames(videos["cfr"], info, batch_size=2)
    assert len(next(frames).images) == 2
    assert started[0].poll() is None  # still decoding, blocked on the full pipe
    frames.close()
    assert started[0].returncode is not None and started[0].returncode < 0  # ended by a signal, not done


def test_bad_ranges(videos):
    info = probe_video(videos["cfr"])
    with pytest.raises(VideoError, match="start_s=5.0 is at or after the end of the video"):
        read_frames(videos["cfr"], info, start_s=5.0)
    for options in (
        {"start_s": 1.0, "end_s": 0.5},
        {"start_s": -1.0},
        {"max_frames": 0},
        {"batch_size": 0},
        {"fps": 0},
    ):
        with pytest.raises(ValueError, match="got"):
            read_frames(videos["cfr"], info, **options)
    # A range between two frame times holds no frame.
    assert list(read_frames(videos["cfr"], info, start_s=1.005, end_s=1.03)) == []


def test_unreadable_file_fails_before_decoding(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(b"\x00garbage" * 500)
    with pytest.raises(VideoError, match="garbage.mp4"):
        read_frames(path)
