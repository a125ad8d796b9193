"""The videos, metrics and summary of the sample run (conftest: the whole chain on a short clip with unusable
frames), and its `snakemake --report` opened in a headless Chromium."""

from __future__ import annotations

import re

import numpy as np
import pytest
from workflow_runs import CLIP, FRAMES, LOST, SAMPLE_EDITS, TARGETS, snakemake

from sg3pipe.io.tables import read_table
from sg3pipe.render.names import video_names
from sg3pipe.video.decode import read_all_frames
from sg3pipe.video.probe import probe_video

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]  # fmt: skip
# h264 (crf 18, 4:2:0 chroma) moves the pixels of a passed-through frame: measured mean luma differences
# 1.3-1.7 levels on 64 px crops, 0.3 on 256 px frames. Rendered crops of the `smile` edit differ from the source
# crop by 5.1-7.4 levels.
PASSTHROUGH_MEAN_LEVELS = 3.0
RENDERED_MEAN_LEVELS = 4.0


def test_every_video_has_every_frame_at_the_source_rate(sample_run):
    names = video_names([(edit["name"], edit["factors"]) for edit in SAMPLE_EDITS], pasteback=True)
    assert sorted(path.stem for path in (sample_run / "synth_a" / "videos").glob("*.mp4")) == sorted(names)
    assert "pasteback-hair_s-3" in names
    source = probe_video(CLIP)
    for name in names:
        info = probe_video(sample_run / "synth_a" / "videos" / f"{name}.mp4")
        assert info.n_frames == FRAMES, name
        assert info.fps == pytest.approx(source.fps), name
    assert probe_video(sample_run / "synth_a" / "videos" / "pasteback-smile-2.mp4").width == source.width
    assert probe_video(sample_run / "synth_a" / "videos" / "side_by_side.mp4").width == 64 * 5  # source, pti, 3 edits
    assert probe_video(sample_run / "synth_a" / "videos" / "fov.mp4").width == 64 + 32


def test_unusable_frames_pass_the_source_through(sample_run):
    crops = read_all_frames(sample_run / "synth_a" / "crops.mkv")
    source = read_all_frames(CLIP)[:FRAMES]
    lost = np.array(list(LOST))
    kept = np.setdiff1d(np.arange(FRAMES), lost)
    edit = read_all_frames(sample_run / "synth_a" / "videos" / "edit-smile-2.mp4")
    pasted = read_all_frames(sample_run / "synth_a" / "videos" / "pasteback-smile-2.mp4")

    def mean_levels(a, b):  # mean absolute luma difference per frame
        luma = np.array([0.299, 0.587, 0.114])
        return np.abs(a.astype(np.float64) @ luma - b.astype(np.float64) @ luma).mean(axis=(1, 2))

    assert (mean_levels(edit[lost], crops[lost]) < PASSTHROUGH_MEAN_LEVELS).all()
    assert (mean_levels(pasted[lost], source[lost]) < PASSTHROUGH_MEAN_LEVELS).all()
    assert (mean_levels(edit[kept], crops[kept]) > RENDERED_MEAN_LEVELS).all()  # a render, not the crop


def test_metrics_rows_pti_and_summary(sample_run):
    metrics, meta = read_table(sample_run / "synth_a" / "metrics.parquet")
    assert len(metrics) == FRAMES
    usable = metrics["usable"].to_numpy()
    assert usable.sum() == FRAMES - len(LOST)
    assert np.isnan(metrics["l2.pti"].to_numpy()[~usable]).all()
    assert np.isfinite(metrics["identity.edit-smile-2"].to_numpy()[usable]).all()
    # PTI fits the crops better than the generator it started from, on the same smoothed latents.
    assert metrics["l2.pti"][usable].mean() < metrics["l2.smoothed"][usable].mean()
    _, pti_meta = read_table(sample_run / "synth_a" / "pti" / "loss.parquet")
    assert pti_meta["end_l2"] < pti_meta["start_l2"]
    summary = meta["summary"][0]  # one face: one track
    assert 0.5 < summary["edit-smile-2"]["tl_id"] <= 1.5 and summary["render_fps"] > 0
    assert summary["jitter"]["latent"]["after"] < summary["jitter"]["latent"]["before"]
    table, _ = read_table(sample_run / "summary.parquet")
    assert list(table["video"]) == ["synth_a"] and table["frames"].iloc[0] == FRAMES


def shown_items(page, uri: str, category: str) -> dict[str, bool]:
    """Open ``category`` of the report at ``uri`` and click each result's eye: file name -> whether the browser
    shows it (an image with pixels, or an HTML page holding a table)."""
    page.goto(uri)
    page.get_by_text(category, exact=True).click()
    shown = {}
    for k in range(page.locator("a[iconname=eye]").count()):
        page.locator("a[iconname=eye]").nth(k).click()
        page.wait_for_timeout(300)
        for source, width in page.evaluate(
            "() => Array.from(document.images).map(i => [i.getAttribute('src') || '', i.naturalWidth])"
        ):
            if source.startswith("data:image/png"):
                shown[re.search(r"filename=([^;]+);", source).group(1)] = (
                    width > 0
                )  # decoded: the browser could draw it
        for frame in page.frames[1:]:
            name = re.search(r"filename=([^;]+);", frame.url)
            if name:
                shown[name.group(1)] = "<table" in frame.content()
    return shown


def test_report_opens_in_a_browser_with_every_plot_and_table(sample_run, tmp_path):
    from playwright.sync_api import sync_playwright

    report = tmp_path / "report.html"
    result = snakemake(sample_run.parent, "--report", str(report), *TARGETS)
    assert result.returncode == 0, result.stderr[-4000:]
    expected = {
        "Videos": {"trajectory.png", "metrics.png", "loss.png", "smile.png", "hair_s.png"},
        "Directions": {"directions.html", "flips.html", "dci.html", "rotation_control.png"},
        "Run": {"summary.html", "failures.html"},
        "Generator": {"samples.png"},
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for category, names in expected.items():
            shown = shown_items(page, report.as_uri(), category)
            assert set(shown) == names and all(shown.values()), (category, shown)
        browser.close()
