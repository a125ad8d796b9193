"""The audio VideoSink muxes in from a source (sg3pipe.video.writer): every written frame is kept, and every audio
stream of the source is fitted to the video's length and stays in sync with the frames.

The sources are made here by ffmpeg (lavfi test pattern and sine tones) with the audio timing of each case; the
outputs are checked by decoding their frames and their audio.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sg3pipe.io.tables import read_table
from sg3pipe.synth.photo_clip import AUDIO_SHORT_S
from sg3pipe.video.decode import read_all_frames
from sg3pipe.video.ffmpeg import ffmpeg_exe
from sg3pipe.video.probe import probe_video
from sg3pipe.video.writer import VideoSink

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FPS = 25
FRAMES = 50  # frames written to each output: 2 s
SECONDS = FRAMES / FPS
PCM_RATE = 8000  # rate (samples/s) the audio is decoded at to look at its loudness over time
AAC_FRAME = 1024  # samples per AAC frame: the encoded audio's length is a whole number of these


def ffmpeg(*args: str) -> None:
    """Run ffmpeg; a failure fails the test with its message."""
    result = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def make_source(path: Path, tones: list[dict], seconds: float = SECONDS, video_delay_s: float = 0.0) -> Path:
    """A 64x48 25-fps H.264 mp4 of ``seconds`` with one AAC stream per tone.

    Each tone is ``{"rate": Hz, "layout": "mono" | "stereo" | "5.1", "seconds": length, "delay_s": when its stream
    starts (its start_time, s), "silence_s": silence at the start of its samples (s)}``; ``video_delay_s``
    starts the video stream that much later (s).
    """
    args = ["-itsoffset", str(video_delay_s), "-f", "lavfi", "-i", f"testsrc=size=64x48:rate={FPS}:duration={seconds}"]
    for tone in tones:
        sine = f"sine=frequency=440:sample_rate={tone['rate']}:duration={tone['seconds']}"
        sine += f",adelay={int(tone.get('silence_s', 0) * 1000)}:all=1,aformat=channel_layouts={tone['layout']}"
        args += ["-itsoffset", str(tone.get("delay_s", 0.0)), "-f", "lavfi", "-i", sine]
    for index in range(len(tones) + 1):
        args += ["-map", f"{index}:0"]
    ffmpeg(*args, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path


def frames() -> np.ndarray:
    """The ``[FRAMES, 48, 64, 3]`` uint8 frames written: frame ``k`` is uniformly gray ``4 * k + 20``."""
    return np.broadcast_to((4 * np.arange(FRAMES) + 20).astype(np.uint8)[:, None, None, None], (FRAMES, 48, 64, 3))


def write(path: Path, source: Path, audio_start_s: float = 0.0) -> Path:
    """Write ``frames()`` to ``path`` in three blocks, with the audio of ``source`` from ``audio_start_s`` (s)."""
    with VideoSink(path, FPS, audio_from=source, audio_start_s=audio_start_s) as sink:
        for block in np.array_split(frames(), 3):
            sink.write(block)
    return path


def audio_streams(path: Path) -> list[tuple[int, str]]:
    """``(sample rate in Hz, channel layout)`` of each audio stream, as ffmpeg describes them."""
    banner = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return [(int(rate), layout) for rate, layout in re.findall(r"Stream #\S+: Audio: .*?, (\d+) Hz, ([^,]+),", banner)]


def decode_audio(path: Path, stream: int, rate: int | None = None) -> np.ndarray:
    """Audio stream ``stream`` of ``path`` decoded to float samples ``[n]``, mixed to mono, at ``rate`` Hz (None:
    its own rate)."""
    resample = ["-ar", str(rate)] if rate else []
    args = ["-i", str(path), "-map", f"0:a:{stream}", "-ac", "1", *resample, "-f", "f32le", "-"]
    result = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", *args], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    return np.frombuffer(result.stdout, np.float32)


def loudness(samples: np.ndarray, start_s: float, end_s: float) -> float:
    """RMS of ``PCM_RATE`` samples between two times (s)."""
    return float(np.sqrt(np.mean(np.square(samples[int(start_s * PCM_RATE) : int(end_s * PCM_RATE)]))))


def onset_s(samples: np.ndarray) -> float:
    """Time (s) of the first of ``PCM_RATE`` samples that is not silent (the tones' amplitude is 1/8)."""
    return float(np.argmax(np.abs(samples) > 0.02) / PCM_RATE)


def check_video(path: Path, source: Path) -> list[np.ndarray]:
    """Assert ``path`` holds every written frame and every audio stream of ``source``, each as long as the
    video; returns each stream's audio at ``PCM_RATE``."""
    decoded, info = read_all_frames(path), probe_video(path)
    assert len(decoded) == FRAMES == info.n_frames and info.first_frame_s == 0  # the frames start with the audio
    np.testing.assert_allclose(decoded.mean(axis=(1, 2, 3)), frames().mean(axis=(1, 2, 3)), atol=2)
    streams = audio_streams(path)
    assert streams == audio_streams(source)
    for index, (rate, _) in enumerate(streams):
        length = len(decode_audio(path, index))
        assert abs(length - SECONDS * rate) <= AAC_FRAME, (index, length / rate)
    return [decode_audio(path, index, PCM_RATE) for index in range(len(streams))]


@pytest.mark.parametrize(
    "tone",
    [
        {"rate": 48000, "layout": "stereo", "seconds": SECONDS - 0.02},  # ends 20 ms early
        {"rate": 44100, "layout": "mono", "seconds": SECONDS + 1.0},  # runs on
        {"rate": 22050, "layout": "5.1", "seconds": SECONDS},
    ],
    ids=["ends-early", "runs-on", "5.1"],
)
def test_audio_is_fitted_to_the_frames(tmp_path, tone):
    source = make_source(tmp_path / "source.mp4", [tone])
    (audio,) = check_video(write(tmp_path / "out.mp4", source), source)
    assert loudness(audio, 0.05, min(tone["seconds"], SECONDS) - 0.05) > 0.05


def test_every_audio_stream_is_kept(tmp_path):
    tones = [
        {"rate": 48000, "layout": "stereo", "seconds": SECONDS - 0.1},
        {"rate": 22050, "layout": "mono", "seconds": SECONDS + 0.5},
        {"rate": 44100, "layout": "5.1", "seconds": 1.0, "delay_s": 0.5},
    ]
    source = make_source(tmp_path / "source.mp4", tones)
    early, long, late = check_video(write(tmp_path / "out.mp4", source), source)
    assert loudness(early, 0.05, 1.85) > 0.05 and loudness(early, 1.95, 2.0) < 0.005
    assert loudness(long, 0.05, 1.95) > 0.05
    assert onset_s(late) == pytest.approx(0.5, abs=0.01)
    assert loudness(late, 0.55, 1.45) > 0.05 and loudness(late, 1.55, 2.0) < 0.005


def test_audio_starting_after_the_video_stays_late(tmp_path):
    tone = {"rate": 48000, "layout": "stereo", "seconds": 1.5, "delay_s": 0.5}
    source = make_source(tmp_path / "source.mp4", [tone])
    (audio,) = check_video(write(tmp_path / "out.mp4", source), source)
    assert onset_s(audio) == pytest.approx(0.5, abs=0.01)
    assert loudness(audio, 0.0, 0.4) < 0.005
    assert loudness(audio, 0.6, 1.9) > 0.05


def test_clip_from_the_middle_of_the_source_keeps_sync(tmp_path):
    # The tone starts 1.0 s into a 3-s source; the clip starts at 0.6 s, so in the output it starts at 0.4 s.
    tone = {"rate": 44100, "layout": "stereo", "seconds": 1.0, "silence_s": 1.0}
    source = make_source(tmp_path / "source.mp4", [tone], seconds=3.0)
    (audio,) = check_video(write(tmp_path / "out.mp4", source, audio_start_s=0.6), source)
    assert onset_s(audio) == pytest.approx(0.4, abs=0.01)
    assert loudness(audio, 0.45, 1.35) > 0.05 and loudness(audio, 1.45, 2.0) < 0.005


def test_source_whose_video_starts_after_its_audio(tmp_path):
    # The video starts about 0.5 s after the audio (the mp4 muxer rounds it), whose tone sounds from 1.0 s.
    tone = {"rate": 22050, "layout": "mono", "seconds": 1.5, "silence_s": 1.0}
    source = make_source(tmp_path / "source.mp4", [tone], video_delay_s=0.5)
    first_frame_s = probe_video(source).first_frame_s
    assert first_frame_s == pytest.approx(0.5, abs=0.05)
    tone_s = onset_s(decode_audio(source, 0, PCM_RATE))  # the audio starts at the file's start
    (audio,) = check_video(write(tmp_path / "out.mp4", source, audio_start_s=first_frame_s), source)
    assert onset_s(audio) == pytest.approx(tone_s - first_frame_s, abs=0.01)
    assert loudness(audio, tone_s - first_frame_s + 0.05, 1.95) > 0.05


def test_source_without_audio(tmp_path):
    source = make_source(tmp_path / "source.mp4", [])
    check_video(write(tmp_path / "out.mp4", source), source)
    assert audio_streams(tmp_path / "out.mp4") == []


def test_nothing_is_left_after_a_failure(tmp_path):
    not_media = tmp_path / "notes.txt"
    not_media.write_text("not a video")
    with pytest.raises(RuntimeError, match="ffmpeg failed adding the audio"):
        write(tmp_path / "out.mp4", not_media)
    source = make_source(tmp_path / "source.mp4", [{"rate": 48000, "layout": "mono", "seconds": SECONDS}])
    with pytest.raises(KeyError), VideoSink(tmp_path / "out.mp4", FPS, audio_from=source) as sink:
        sink.write(frames())
        raise KeyError("the renderer failed")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt", "source.mp4"]


def test_the_astronaut_samples_audio_ends_before_its_frames():
    info = probe_video(SAMPLES / "astronaut.mp4")
    truth, _ = read_table(SAMPLES / "astronaut.truth.parquet")
    assert info.n_frames == len(truth) == 100 and info.has_audio and info.first_frame_s == 0
    (rate, _), *others = audio_streams(SAMPLES / "astronaut.mp4")
    assert not others
    assert len(decode_audio(SAMPLES / "astronaut.mp4", 0)) / rate == pytest.approx(4.0 - AUDIO_SHORT_S, abs=1e-3)
