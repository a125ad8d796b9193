"""probe_video on small videos made by ffmpeg: the facts it reports and the errors bad inputs give."""

from __future__ import annotations

import logging
import pickle
import subprocess
from fractions import Fraction

import numpy as np
import pytest
from video_fixtures import (
    HEIGHT,
    WIDTH,
    delay_video,
    frame_numbers,
    make_dropped_video,
    make_vfr_video,
    make_video,
    run_ffmpeg,
    tag_rotation,
)

from sg3pipe.video import ffmpeg as ffmpeg_module
from sg3pipe.video.decode import read_frames
from sg3pipe.video.errors import VideoError
from sg3pipe.video.ffmpeg import FFmpegNotFoundError
from sg3pipe.video.probe import frame_rate, probe_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """The module's test videos, made once: name -> path."""
    folder = tmp_path_factory.mktemp("probe")
    paths = {
        "audio": make_video(folder / "audio.mp4", audio=True),
        "plain": make_video(folder / "plain.mp4"),
        "ntsc": make_video(folder / "ntsc.mp4", fps="30000/1001", frames=30),
        "vfr": make_vfr_video(folder / "vfr.mkv"),
        "dropped": make_dropped_video(folder / "dropped.mp4"),
        "gray": make_video(folder / "gray.mkv", vf="format=gray", output_args=("-c:v", "ffv1")),
        "stored90": make_video(folder / "stored90.mp4", vf="transpose=2"),
    }
    paths["rot90"] = tag_rotation(paths["stored90"], folder / "rot90.mp4", 90)
    # Video starting 0.2 s after the audio: its first frame is shown at 0.2 s.
    paths["late"] = delay_video(make_video(folder / "source.mkv", audio=True), folder / "late.mkv", 0.2)
    return paths


def test_constant_rate_video_with_audio(videos):
    info = probe_video(videos["audio"])
    assert info.path == str(videos["audio"].absolute())
    assert (info.width, info.height, info.rotation) == (WIDTH, HEIGHT, 0)
    assert info.fps == 25.0 and info.n_frames == 50 and info.duration_s == pytest.approx(2.0)
    assert info.has_audio and not info.variable_fps
    assert (info.codec, info.pix_fmt, info.first_frame_s) == ("h264", "yuv420p", 0.0)
    assert not probe_video(videos["plain"]).has_audio


def test_ntsc_rate_is_exact(videos):
    info = probe_video(videos["ntsc"])
    assert frame_rate(info.fps) == Fraction(30000, 1001)
    assert info.n_frames == 30 and not info.variable_fps


def test_frame_rate_as_ffmpeg_takes_it():
    assert frame_rate(25.0) == 25
    assert frame_rate(30000 / 1001) == Fraction(30000, 1001)
    assert frame_rate(29.97) == Fraction(2997, 100)


def test_rotation_metadata_gives_displayed_size(videos):
    stored = probe_video(videos["stored90"])
    assert (stored.width, stored.height, stored.rotation) == (HEIGHT, WIDTH, 0)
    rotated = probe_video(videos["rot90"])
    assert (rotated.width, rotated.height, rotated.rotation) == (WIDTH, HEIGHT, 90)


def test_variable_rate_is_detected_and_stated(videos):
    info = probe_video(videos["vfr"])
    assert info.variable_fps
    # 50 frames over 3.44 s (first timestamp to one typical 40 ms interval after the last): no camera rate
    # lies within 2 %, so the average itself is the rate.
    assert info.fps == pytest.approx(50 / 3.44, rel=1e-3)
    assert info.n_frames == sum(len(batch.images) for batch in read_frames(videos["vfr"], info))


def test_dropped_frames_keep_the_rate(videos):
    info = probe_video(videos["dropped"])
    assert info.variable_fps and info.fps == 25.0 and info.n_frames == 50


def test_grayscale_pixel_format(videos):
    info = probe_video(videos["gray"])
    assert (info.codec, info.pix_fmt, info.n_frames) == ("ffv1", "gray", 50)


def test_video_starting_after_its_audio(videos):
    info = probe_video(videos["late"])
    assert info.first_frame_s == pytest.approx(0.2, abs=1e-3)
    assert info.has_audio and info.n_frames == 50


def test_truncated_video_decodes_to_the_cut(tmp_path, caplog):
    whole = make_video(
        tmp_path / "whole.mp4",
        frames=250,
        output_args=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart"),
    )
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    with caplog.at_level(logging.WARNING, logger="sg3pipe.video.probe"):
        info = probe_video(cut)
    assert str(cut) in caplog.text and "truncated" in caplog.text
    assert info.fps == 25.0 and 0 < info.n_frames < 250
    images = np.concatenate([batch.images for batch in read_frames(cut, info)])
    assert len(images) == info.n_frames
    # The frames up to the cut, in order; a hole the cut left repeats the frame before it.
    numbers = frame_numbers(images)
    assert numbers[0] == 0 and (np.diff(numbers) >= 0).all() and numbers[-1] >= info.n_frames - 4


def _video_error(path) -> str:
    with pytest.raises(VideoError) as caught:
        probe_video(path)
    message = str(caught.value)
    assert str(path) in message and "fix:" in message
    return message


def test_error_survives_pickling():
    error = pickle.loads(pickle.dumps(VideoError("a.mp4", "it is broken")))
    assert (error.path, error.problem) == ("a.mp4", "it is broken") and "fix:" in str(error)


def test_missing_and_empty_files(tmp_path):
    assert "does not exist" in _video_error(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "empty" in _video_error(tmp_path / "empty.mp4")
    assert "not a file" in _video_error(tmp_path)


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(bytes(range(256)) * 40)
    message = _video_error(path)
    assert "ffmpeg cannot read it" in message and "copy it again" in message


def test_plain_mp4_cut_short_loses_its_index(tmp_path):
    whole = make_video(tmp_path / "whole.mp4", frames=100)  # index (moov) at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "moov atom not found" in _video_error(cut)


def test_audio_only_files(tmp_path):
    voice, cover, covered = tmp_path / "voice.m4a", tmp_path / "cover.png", tmp_path / "covered.m4a"
    run_ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(voice))
    assert "no video stream (only audio)" in _video_error(voice)
    # Cover art is a one-picture "video" stream that players do not play.
    run_ffmpeg("-f", "lavfi", "-i", "color=red:s=32x32", "-frames:v", "1", str(cover))
    mux = ["-map", "0", "-map", "1", "-c:a", "copy", "-c:v", "png", "-disposition:v", "attached_pic"]
    run_ffmpeg("-i", str(voice), "-i", str(cover), *mux, str(covered))
    assert "no video stream (only audio)" in _video_error(covered)


def test_missing_ffmpeg_is_one_clear_error(videos, monkeypatch):
    import imageio_ffmpeg

    def no_binary():
        raise RuntimeError("no ffmpeg for this platform")

    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_binary)
    ffmpeg_module.ffmpeg_exe.cache_clear()
    try:
        with pytest.raises(FFmpegNotFoundError, match="imageio-ffmpeg"):
            probe_video(videos["plain"])
    finally:
        ffmpeg_module.ffmpeg_exe.cache_clear()


def test_probe_needs_no_ffprobe(videos, monkeypatch):
    """Probing runs only the ffmpeg binary (imageio-ffmpeg ships no ffprobe)."""
    calls = []
    real_run = subprocess.run

    def recording_run(args, *rest, **options):
        calls.append(args[0])
        return real_run(args, *rest, **options)

    monkeypatch.setattr(subprocess, "run", recording_run)
    probe_video(videos["plain"])
    assert calls and all("ffprobe" not in exe for exe in calls)
