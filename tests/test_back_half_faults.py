"""The back half (rule render) on odd and broken clips, each made here from scikit-image's astronaut photo: a face
that leaves the frame for longer than ``align.max_gap``, a 40-px face in a 1080p frame and a face that fills a 4K
frame, 10-bit HEVC with rotation metadata and an odd frame size, clips of one and of two frames, a job killed while
it writes its videos, and a disk that fills while it does.

The stages run as plain functions (sg3pipe.stages: frames -> encode -> render) with the bundled 64-px models, two
PTI steps and one random W direction standing in for direction finding; the kill runs the real workflow.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from skimage import data
from video_fixtures import run_ffmpeg, tag_rotation
from workflow_runs import workflow_command

from sg3pipe import load_generator
from sg3pipe.editing.directions import save_boundary
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.metrics.summary import write_summary
from sg3pipe.render.names import video_names
from sg3pipe.stages.encode import encode
from sg3pipe.stages.frames import frames
from sg3pipe.stages.render import pti_outputs, render
from sg3pipe.synth.photo_clip import photo_landmarks
from sg3pipe.video.decode import read_all_frames
from sg3pipe.video.ffmpeg import ffmpeg_exe
from sg3pipe.video.probe import probe_video
from sg3pipe.video.writer import VideoSink, write_video
from sg3pipe.workflow_config import resolve_config

ROOT = Path(__file__).resolve().parents[1]
# One edit along a random W direction: what direction finding finds does not matter to the back half.
EDIT = {"name": "look", "direction": "smiling", "space": "w", "factors": [3.0], "unit": "raw"}
VIDEOS = video_names([(EDIT["name"], EDIT["factors"])], pasteback=True)
CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]  # fmt: skip
# h264 at crf 18 (and the source's own compression) moves a passed-through pixel by a level or two on average;
# a rendered face differs from the photo's by tens of levels (the bundled generator draws cartoon faces).
PASSTHROUGH_LEVELS = 4.0
RENDERED_LEVELS = 15.0


# --- clips ------------------------------------------------------------------------------------------------------


def astronaut_frame(width: int, height: int, scale: float, centre: tuple[float, float]) -> np.ndarray:
    """The astronaut photo scaled by ``scale`` with its face centre at pixel ``centre`` of a ``width`` x ``height``
    frame, gray where the photo does not reach (so that no mirrored second face appears)."""
    face = np.array([226.0, 132.0])  # the face's centre in the 512-px photo
    shift = np.asarray(centre) - scale * face
    matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]])
    return cv2.warpAffine(data.astronaut(), matrix, (width, height), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(96, 96, 96))  # fmt: skip


def landmark_table(path: Path, scale: float, centres: list[tuple[float, float]]) -> Path:
    """The landmarks of :func:`astronaut_frame` clips (dlib's on the still photo, moved as the photo was): a
    table for the ``table`` landmark backend, one row per frame."""
    still = photo_landmarks(data.astronaut())
    face = np.array([226.0, 132.0])
    moved = np.stack([scale * (still - face) + np.asarray(centre) for centre in centres])
    write_table(path, {"frame": np.arange(len(centres)), "landmarks": moved.reshape(len(centres), 136)}, {})
    return path


def gap_clip(path: Path, fps: int = 5, face_s: int = 1, gap_s: int = 3) -> tuple[Path, np.ndarray]:
    """``face_s`` seconds of the face left of centre, ``gap_s`` seconds of the photo's lower right corner (the
    camera looks away: no face), ``face_s`` seconds of the face right of centre; 256x256. Returns the path and
    the frames."""
    size = 256
    away = cv2.resize(data.astronaut()[300:, 300:], (size, size), interpolation=cv2.INTER_AREA)
    before = [astronaut_frame(size, size, 0.5, (118, 128))] * (face_s * fps)
    after = [astronaut_frame(size, size, 0.5, (138, 128))] * (face_s * fps)
    images = np.stack(before + [away] * (gap_s * fps) + after)
    write_video(path, images, fps)
    return path, images


def encode_clip(path: Path, images: np.ndarray, fps: int, *codec: str, audio: bool = False) -> Path:
    """Encode RGB ``images`` into ``path`` with ffmpeg's ``codec`` options (from a lossless copy)."""
    lossless = path.with_name(f"{path.stem}.lossless.mkv")
    write_video(lossless, images, fps, codec="lossless")
    sound = ["-f", "lavfi", "-i", f"sine=frequency=330:duration={len(images) / fps}", "-c:a", "aac"] if audio else []
    run_ffmpeg("-i", str(lossless), *sound, *codec, str(path))
    lossless.unlink()
    return path


# --- the stages -------------------------------------------------------------------------------------------------


def back_half_config(**sections: dict) -> dict:
    """The bundled config with the bundled models, small settings and :data:`EDIT`; ``sections`` update it."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["encode"].update(identity=False, n_iters=1)
    config["pti"].update(steps=2, checkpoint_every=2)
    config["render"]["batch"] = 8
    config["metrics"]["identity"] = False
    config["edits"] = [EDIT]
    for name, values in sections.items():
        config[name].update(values)
    config = resolve_config(config, ROOT)
    config["device"] = "cpu"
    return config


def write_directions(folder: Path, config: dict) -> Path:
    """A directions folder with one random unit W direction under :data:`EDIT`'s name; returns its table."""
    folder.mkdir(parents=True, exist_ok=True)
    G = load_generator(ROOT / config["models"]["generator"])
    normal = np.random.default_rng(0).standard_normal(G.w_dim)
    save_boundary(folder / "smiling.npy", normal / np.linalg.norm(normal))
    columns = {"name": ["smiling"], "space": ["w"], "file": ["smiling.npy"], "std": [1.0]}
    write_table(folder / "directions.parquet", columns, {})
    return folder / "directions.parquet"


def front_half(folder: Path, video: Path, config: dict, landmarks: Path | None = None) -> dict[str, str]:
    """Run the frames and encode stages on ``video`` into ``folder`` and write a directions folder beside it
    (:func:`write_directions`); returns the render stage's inputs."""
    paths = {name: str(folder / f"{name}.parquet") for name in ("frames", "latents")}
    crops = {"aligned": str(folder / "aligned.mkv"), "crops": str(folder / "crops.mkv")}
    inputs = {"video": str(video), **({"landmarks": str(landmarks)} if landmarks else {})}
    sections = {key: config[key] for key in ("ingest", "landmarks", "faces", "align")}
    frames(inputs, {"table": paths["frames"], **crops}, {**sections, "clip": {}})
    encode({"table": paths["frames"], **crops, "model": str(ROOT / config["models"]["encoder"])},
           {"table": paths["latents"]}, {"encode": config["encode"], "device": "cpu"})  # fmt: skip
    directions = write_directions(folder.parent / "directions", config)
    return {"video": str(video), **paths, "crops": crops["crops"], "directions": str(directions),
            "generator": str(ROOT / config["models"]["generator"])}  # fmt: skip


def render_stage(inputs: dict[str, str], config: dict, out: Path, videos: Path | None = None) -> dict[str, str]:
    """Run the render stage with its outputs in ``out`` (the videos in ``videos``, default ``out/videos``)."""
    pti = pti_outputs(config["pti"])
    outputs = {name: str(out / path.removeprefix("results/{video}/")) for name, path in pti.items()}
    outputs.update(edits=str(out / "edits"), smoothed=str(out / "smoothed.parquet"),
                   trajectory=str(out / "trajectory.png"), videos=str(videos or out / "videos"),
                   metrics=str(out / "metrics.parquet"), plot=str(out / "metrics.png"))  # fmt: skip
    sections = {key: config[key] for key in ("pti", "edits", "smooth", "render", "metrics")}
    render(inputs, outputs, {**sections, "device": "cpu", "lpips": None, "pti_workdir": str(out / "pti" / "work")})
    return outputs


def back_half(folder: Path, video: Path, config: dict, landmarks: Path | None = None) -> Path:
    """frames -> encode -> render of ``video`` in ``folder/results``; returns that folder."""
    results = folder / "results"
    render_stage(front_half(results, video, config, landmarks), config, results)
    return results


# --- checks -----------------------------------------------------------------------------------------------------


def levels(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images or stacks, in levels."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def quad_box(frames_table, margin: int = 4) -> tuple[slice, slice]:
    """Rows and columns of the frame pixels under the crop window (paste-back can change only these)."""
    quad = column_array(frames_table, "crop_quad", (4, 2))[0]
    (x0, y0), (x1, y1) = np.floor(quad.min(axis=0)) - margin, np.ceil(quad.max(axis=0)) + margin
    return slice(max(int(y0), 0), max(int(y1), 0)), slice(max(int(x0), 0), max(int(x1), 0))


def outside(image: np.ndarray, box: tuple[slice, slice]) -> np.ndarray:
    """The pixels of ``[..., H, W, 3]`` outside ``box``, flattened to ``[..., P, 3]``."""
    keep = np.ones(image.shape[-3:-1], dtype=bool)
    keep[box] = False
    return image[..., keep, :]


def browser_view(videos: list[Path], folder: Path) -> list[dict]:
    """What headless Chromium makes of each video in a page of ``<video>`` elements: ``readyState``, ``duration``,
    ``videoWidth``, ``videoHeight`` and the error code (None when it plays)."""
    from playwright.sync_api import sync_playwright

    page_path = folder / "videos.html"
    tags = "".join(f'<video src="{video.as_uri()}" muted preload="auto"></video>' for video in videos)
    page_path.write_text(f"<!doctype html><html><body>{tags}</body></html>")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(page_path.as_uri())
        # HAVE_CURRENT_DATA (2): the first frame is decoded; an error ends the wait too.
        page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 2 || v.error)")
        found = page.evaluate(
            "[...document.querySelectorAll('video')].map(v => ({ready: v.readyState, duration: v.duration, "
            "width: v.videoWidth, height: v.videoHeight, error: v.error && v.error.code}))"
        )
        browser.close()
    return found


# --- 1. the face leaves the frame for longer than align.max_gap ---------------------------------------------------


@pytest.mark.slow
def test_face_away_for_three_seconds_passes_the_source_through_and_smooths_each_side_alone(tmp_path):
    fps, face_s, gap_s = 5, 1, 3
    video, images = gap_clip(tmp_path / "gap.mp4", fps, face_s, gap_s)
    config = back_half_config(metrics={"identity": True})
    assert gap_s * fps > config["align"]["max_gap"]
    results = back_half(tmp_path, video, config)

    table, _ = read_table(results / "frames.parquet")
    n, gap = len(images), np.arange(face_s * fps, (face_s + gap_s) * fps)
    usable = np.isin(table["status"].to_numpy(), ("ok", "interpolated"))
    assert len(table) == n and not usable[gap].any() and usable[: gap[0]].all() and usable[gap[-1] + 1 :].all()

    # Every video keeps every frame; in the gap each shows the source (the crop, the frame).
    crops = read_all_frames(results / "crops.mkv")
    for name in VIDEOS:
        assert probe_video(results / "videos" / f"{name}.mp4").n_frames == n, name
    for name in ("reconstruction", "smoothed", "pti", "edit-look-3"):
        shown = read_all_frames(results / "videos" / f"{name}.mp4")
        assert levels(shown[gap], crops[gap]) < PASSTHROUGH_LEVELS, name
        assert levels(shown[usable], crops[usable]) > RENDERED_LEVELS, name
    pasted = read_all_frames(results / "videos" / "pasteback-look-3.mp4")
    assert levels(pasted[gap], images[gap]) < PASSTHROUGH_LEVELS
    box = quad_box(table)
    assert levels(pasted[usable][:, box[0], box[1]], images[usable][:, box[0], box[1]]) > 1.0  # the face is pasted
    fov = read_all_frames(results / "videos" / "fov.mp4")
    assert levels(fov[gap][:, :, 16:80], crops[gap]) < PASSTHROUGH_LEVELS and fov[gap][:, :, :12].mean() < 4

    # Smoothing bridges the gap without pulling the frames beside it: the face stands still on each side, at
    # another place, so any leak across the gap would move the frames next to it towards the other side.
    smoothed, _ = read_table(results / "smoothed.parquet")
    raw_tx, smooth_tx = table["tx"].to_numpy(), smoothed["tx"].to_numpy()
    assert np.isnan(smooth_tx[gap]).all() and np.isfinite(smooth_tx[usable]).all()
    step = abs(np.nanmean(raw_tx[gap[-1] + 1 :]) - np.nanmean(raw_tx[: gap[0]]))
    assert step > 0.05  # the face moved by a tenth of the crop between the sides
    for side in (slice(0, gap[0]), slice(gap[-1] + 1, n)):
        assert np.abs(smooth_tx[side] - np.median(raw_tx[side])).max() < 0.05 * step

    # TL-ID and TG-ID count the usable frames only; the per-frame identity is NaN exactly on the others.
    metrics, meta = read_table(results / "metrics.parquet")
    identity = metrics["identity.edit-look-3"].to_numpy()
    assert np.isnan(identity[~usable]).all() and np.isfinite(identity[usable]).all()
    consistency = meta["summary"][0]["edit-look-3"]
    assert 0.5 < consistency["tl_id"] < 1.5 and 0.5 < consistency["tg_id"] < 1.5
    assert meta["summary"][0]["usable_frames"] == usable.sum()


# --- 2. a 40-px face in a 1080p frame, a face that fills a 4K frame ------------------------------------------------

# (width, height, photo scale, frames): the photo's face is 92 px wide (jaw to jaw) and 91 px from brows to chin.
FACE_SIZES = {"40px_in_1080p": (1920, 1080, 40 / 92, 6), "filling_4k": (3840, 2160, 16.0, 3)}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FACE_SIZES))
def test_tiny_and_huge_faces_render_and_paste_back_at_the_source_size(tmp_path, case):
    width, height, scale, count = FACE_SIZES[case]
    centres = [(0.55 * width + 2 * k, 0.45 * height + k) for k in range(count)]  # a slow drift
    images = np.stack([astronaut_frame(width, height, scale, centre) for centre in centres])
    video = encode_clip(tmp_path / f"{case}.mp4", images, 25, "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p")
    landmarks = landmark_table(tmp_path / "landmarks.parquet", scale, centres)
    results = back_half(tmp_path, video, back_half_config(landmarks={"backend": "table"}), landmarks)

    table, _ = read_table(results / "frames.parquet")
    assert (table["status"] == "ok").all()
    for name in VIDEOS:
        info = probe_video(results / "videos" / f"{name}.mp4")
        assert info.n_frames == count, name
    pasted = read_all_frames(results / "videos" / "pasteback-look-3.mp4")
    source = read_all_frames(video)
    assert pasted.shape == source.shape == (count, height, width, 3)
    # Away from the face the frame is the source's (outside the crop window, which a face filling the frame
    # makes larger than the frame, and in a corner under no mask); on the face the render replaced it.
    box, corner = quad_box(table), (slice(height - height // 8, height), slice(0, width // 8))
    if outside(pasted, box).size:
        assert levels(outside(pasted, box), outside(source, box)) < PASSTHROUGH_LEVELS
    assert levels(pasted[:, corner[0], corner[1]], source[:, corner[0], corner[1]]) < PASSTHROUGH_LEVELS
    still = photo_landmarks(data.astronaut())
    for k, centre in enumerate(centres):
        face = scale * (still - [226.0, 132.0]) + centre
        (x0, y0), (x1, y1) = face.min(axis=0).astype(int), face.max(axis=0).astype(int)
        assert levels(pasted[k, y0:y1, x0:x1], source[k, y0:y1, x0:x1]) > RENDERED_LEVELS, k


# --- 3. 10-bit HEVC turned by rotation metadata; an odd frame size ------------------------------------------------


def upright_frames(width: int, height: int, count: int) -> np.ndarray:
    """``count`` frames of the face drifting right, ``width`` x ``height``, as a player shows them."""
    scale = 0.7 * min(width, height) / 256
    return np.stack([astronaut_frame(width, height, scale, (0.5 * width + 2 * k, 0.45 * height)) for k in range(count)])


def hevc_10bit_rotated(path: Path) -> tuple[Path, np.ndarray]:
    """A phone's portrait clip: 10-bit HEVC stored landscape (320x240) with rotation metadata that turns it a
    quarter clockwise to 240x320, and an AAC track."""
    upright = upright_frames(240, 320, 6)
    stored = np.ascontiguousarray(np.rot90(upright, k=1, axes=(1, 2)))  # a quarter counter-clockwise
    hevc = ("-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-crf", "12", "-x265-params", "log-level=error",
            "-tag:v", "hvc1")  # fmt: skip
    flat = encode_clip(path.with_name("stored.mp4"), stored, 25, *hevc, audio=True)
    return tag_rotation(flat, path, 90), upright


def vp9_odd_size(path: Path) -> tuple[Path, np.ndarray]:
    """An 853x480 VP9 clip (VP9 allows odd sides in 4:2:0, H.264 does not)."""
    upright = upright_frames(853, 480, 6)
    vp9 = ("-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-crf", "20", "-b:v", "0", "-deadline", "realtime")
    return encode_clip(path, upright, 25, *vp9), upright


ODD_SOURCES = {"hevc_10bit_rotated": hevc_10bit_rotated, "vp9_853x480": vp9_odd_size}


def encoders() -> str:
    """ffmpeg's list of encoders."""
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ODD_SOURCES))
def test_hevc_10bit_rotated_and_odd_sized_sources_give_upright_yuv420p_videos_a_browser_plays(tmp_path, case):
    needed = {"hevc_10bit_rotated": "libx265", "vp9_853x480": "libvpx-vp9"}[case]
    if needed not in encoders():
        pytest.skip(f"this ffmpeg has no {needed} encoder to make the source with")
    video, upright = ODD_SOURCES[case](tmp_path / f"{case}.{'mp4' if 'hevc' in case else 'webm'}")
    source = probe_video(video)
    count, height, width = upright.shape[:3]
    assert (source.width, source.height, source.n_frames) == (width, height, count)
    assert source.rotation == (90 if "rotated" in case else 0)
    results = back_half(tmp_path, video, back_half_config())

    even = (width + width % 2, height + height % 2)  # yuv420p needs even sides: an odd one gains a copied column
    for name in VIDEOS:
        info = probe_video(results / "videos" / f"{name}.mp4")
        assert (info.codec, info.pix_fmt, info.rotation, info.n_frames) == ("h264", "yuv420p", 0, count), name
        if name.startswith("pasteback-"):
            assert (info.width, info.height) == even, name
    # The paste-back is the upright source away from the face: right way up, colours as they were (10-bit
    # decoding keeps the levels).
    pasted = read_all_frames(results / "videos" / "pasteback-look-3.mp4")[:, :height, :width]
    table, _ = read_table(results / "frames.parquet")
    box = quad_box(table)
    assert levels(outside(pasted, box), outside(upright, box)) < PASSTHROUGH_LEVELS
    assert levels(pasted[:, box[0], box[1]], upright[:, box[0], box[1]]) > 1.0
    if width % 2:
        column = read_all_frames(results / "videos" / "pasteback-look-3.mp4")[:, :, width]
        assert levels(column, pasted[:, :, width - 1]) < PASSTHROUGH_LEVELS  # the copy, not black

    videos = [results / "videos" / f"{name}.mp4" for name in VIDEOS]
    for name, seen in zip(VIDEOS, browser_view(videos, tmp_path), strict=True):
        info = probe_video(results / "videos" / f"{name}.mp4")
        assert seen["error"] is None and seen["ready"] >= 2, (name, seen)
        assert (seen["width"], seen["height"]) == (info.width, info.height), (name, seen)
        assert seen["duration"] == pytest.approx(count / 25, abs=0.03), (name, seen)


# --- 4. clips of one and of two frames ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("count", [1, 2])
def test_one_and_two_frame_clips_render_every_video_and_summarise(tmp_path, count):
    images = np.stack([astronaut_frame(256, 256, 0.6, (128 + 3 * k, 120)) for k in range(count)])
    video = tmp_path / "short.mp4"
    write_video(video, images, 25)
    config = back_half_config(metrics={"identity": True}, pti={"batch": 2})
    results = back_half(tmp_path, video, config)

    for name in VIDEOS:
        assert probe_video(results / "videos" / f"{name}.mp4").n_frames == count, name
    losses, _ = read_table(results / "pti" / "loss.parquet")
    assert len(losses) == config["pti"]["steps"] and np.isfinite(losses["loss"]).all()
    # Smoothing has nothing to average over: a line through one or two points is those points.
    table, _ = read_table(results / "frames.parquet")
    smoothed, _ = read_table(results / "smoothed.parquet")
    raw = column_array(table, "transform", (3, 3))
    assert np.abs(column_array(smoothed, "transform", (3, 3)) - raw).max() < 1e-5
    metrics, meta = read_table(results / "metrics.parquet")
    assert len(metrics) == count and np.isfinite(metrics["identity.edit-look-3"]).all()
    consistency = meta["summary"][0]["edit-look-3"]
    if count == 1:  # no pair of frames: nothing to compare, and it says so
        assert np.isnan(consistency["tl_id"]) and np.isnan(consistency["tg_id"])
    else:
        assert 0.5 < consistency["tl_id"] < 1.5 and consistency["tg_id"] == consistency["tl_id"]
    summary = write_summary([results / "metrics.parquet"], tmp_path / "summary.parquet")
    assert len(summary) == 1 and summary["frames"].iloc[0] == count


# --- 5. a job killed while it writes its videos, and rerun ---------------------------------------------------------


def run_until(folder: Path, target: str, ready) -> None:
    """Start the workflow towards ``target`` and SIGKILL it with its jobs (no chance to clean up) as soon as
    ``ready()`` is true; fails if the run ends first."""
    command = workflow_command(folder, "--cores", "2", "--rerun-incomplete", target)
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 900
    while not ready() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.poll() is None, "the run ended before the moment to kill it"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    unlock = subprocess.run([*command, "--unlock"], capture_output=True, text=True)  # as a user would
    assert unlock.returncode == 0, unlock.stderr[-2000:]


def assert_no_short_video(videos: Path, count: int) -> list[str]:
    """Every video under its final name has all ``count`` frames; returns their names."""
    finished = sorted(path.stem for path in videos.glob("[!.]*.mp4"))
    for name in finished:
        assert probe_video(videos / f"{name}.mp4").n_frames == count, name
    return finished


@pytest.mark.slow
def test_render_killed_while_writing_videos_leaves_no_short_video_and_the_rerun_writes_them_all(tmp_path):
    count = 15
    clip = ROOT / "samples" / "synth_a.mp4"
    (tmp_path / "manifest.tsv").write_text(f"id\tpath\tmax_frames\nsynth_a\t{clip}\t{count}\n")
    overrides = {
        "samples": str(tmp_path / "manifest.tsv"),
        "device": "cpu",
        "encode": {"identity": False, "n_iters": 1},
        "directions": {"samples": 200, "chunk": 200, "batch": 50, "ratio": 0.1},
        "edits": [{"name": "smile", "direction": "smiling", "space": "w", "factors": [2.0], "unit": "std"}],
        "pti": {"steps": 4, "checkpoint_every": 2},
        "render": {"batch": 3},
        "metrics": {"identity": False},
    }
    (tmp_path / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    target = "results/synth_a/metrics.parquet"
    videos = tmp_path / "results" / "synth_a" / "videos"
    names = video_names([("smile", [2.0])], pasteback=True)

    def partial() -> list[Path]:
        return list(videos.glob(".*.partial-*")) if videos.is_dir() else []

    # Killed mid-stream: every video is a temporary file; then killed again once the first one is finished and
    # renamed, while the others are still being closed.
    run_until(tmp_path, target, lambda: len(partial()) >= len(names))
    assert partial() and assert_no_short_video(videos, count) == []
    run_until(tmp_path, target, lambda: any(videos.glob("[!.]*.mp4")))
    finished = assert_no_short_video(videos, count)
    assert finished and not (tmp_path / target).exists()

    result = subprocess.run(workflow_command(tmp_path, "--cores", "2", "--rerun-incomplete", target),
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert assert_no_short_video(videos, count) == sorted(names) and not partial()
    log = (tmp_path / "logs" / "render" / "synth_a.log").read_text()
    assert "resumed" in log and "at step 4" in log, log[-2000:]  # the tuning was not done again
    assert not (tmp_path / "results" / "synth_a" / "pti" / "work").exists()  # and its checkpoint is gone now


# --- 6. the disk fills while the videos are written ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> tuple[dict[str, str], int]:
    """The render stage's inputs for an 8-frame 640x480 clip of the face drifting, and the frame count: its
    paste-back video takes about 100 kB, the crop-sized ones a few."""
    folder = tmp_path_factory.mktemp("small_clip")
    images = np.stack([astronaut_frame(640, 480, 1.2, (300 + 3 * k, 220 + k)) for k in range(8)])
    video = folder / "clip.mp4"
    write_video(video, images, 25)
    return front_half(folder / "results", video, back_half_config()), len(images)


def size_limited_ffmpeg(folder: Path, kilobytes: int) -> Path:
    """A script that runs ffmpeg under ``ulimit -f``: writing past ``kilobytes`` kills it with SIGXFSZ."""
    script = folder / "ffmpeg"
    script.write_text(f'#!/bin/bash\nulimit -f {kilobytes}\nexec "{ffmpeg_exe()}" "$@"\n')
    script.chmod(0o755)
    return script


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (needs root and a kernel that allows it, else the test skips)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def assert_nothing_partial(videos: Path, count: int) -> None:
    """No temporary file is left, and every video under its final name has all ``count`` frames."""
    assert not [path.name for path in videos.iterdir() if ".partial-" in path.name]
    for path in videos.glob("[!.]*.mp4"):
        assert len(read_all_frames(path)) == count, path.name


@pytest.mark.slow
def test_a_disk_that_fills_while_videos_are_written_fails_the_job_naming_the_video_and_the_cause(tmp_path, small_clip):
    inputs, count = small_clip
    config = back_half_config(pti={"enabled": False})  # the fault is in writing; tuning would only take time
    with small_disk(tmp_path / "videos", "48k") as videos:
        with pytest.raises((RuntimeError, OSError), match="No space left on device") as failure:
            render_stage(inputs, config, tmp_path / "out", videos)
        assert str(videos) in str(failure.value) and ".mp4" in str(failure.value), failure.value
        assert_nothing_partial(videos, count)
    assert not (tmp_path / "out" / "metrics.parquet").exists()


@pytest.mark.slow
def test_a_file_size_limit_that_stops_ffmpeg_fails_the_job_naming_the_video_and_the_cause(
    tmp_path, small_clip, monkeypatch
):
    inputs, count = small_clip
    limited = size_limited_ffmpeg(tmp_path, 32)
    monkeypatch.setattr("sg3pipe.video.writer.ffmpeg_exe", lambda: str(limited))
    videos = tmp_path / "out" / "videos"
    with pytest.raises(RuntimeError, match="SIGXFSZ") as failure:
        render_stage(inputs, back_half_config(pti={"enabled": False}), tmp_path / "out")
    assert str(videos / "pasteback-look-3.mp4") in str(failure.value), failure.value
    assert_nothing_partial(videos, count)
    assert not (tmp_path / "out" / "metrics.parquet").exists()


@pytest.mark.parametrize("fault", ["full_disk", "file_size_limit"])
def test_a_video_whose_ffmpeg_stops_mid_stream_names_the_file_and_the_cause(tmp_path, fault, monkeypatch):
    """ffmpeg dies while frames still come (x264 writes nothing for its first 40-odd frames): the next write
    fails on a closed pipe, which must become ffmpeg's reason, not a bare BrokenPipeError."""
    noise = np.random.default_rng(0).integers(0, 256, (8, 128, 128, 3), dtype=np.uint8)  # ~30 kB a frame
    if fault == "full_disk":
        stack = contextlib.ExitStack()
        folder = stack.enter_context(small_disk(tmp_path / "disk", "256k"))
        reason = "No space left on device"
    else:
        stack, folder = contextlib.nullcontext(), tmp_path / "out"
        folder.mkdir()
        monkeypatch.setattr("sg3pipe.video.writer.ffmpeg_exe", lambda: str(size_limited_ffmpeg(tmp_path, 256)))
        reason = "SIGXFSZ"
    with stack:
        with pytest.raises(RuntimeError, match=reason) as failure:
            with VideoSink(folder / "noise.mp4", 25) as sink:
                for _ in range(40):
                    sink.write(noise)
        assert str(folder / "noise.mp4") in str(failure.value) and sink.count < 320, failure.value
        assert list(folder.iterdir()) == []


def test_a_table_written_to_a_full_disk_names_it(tmp_path):
    with small_disk(tmp_path / "disk", "16k") as folder:
        with pytest.raises(OSError, match="No space left on device") as failure:
            write_table(folder / "metrics.parquet", {"frame": np.arange(100_000)}, {})
        assert failure.value.filename == str(folder / "metrics.parquet")
        assert list(folder.iterdir()) == []
