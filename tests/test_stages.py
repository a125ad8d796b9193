"""The workflow's stages called directly, without Snakemake (sg3pipe.stages): frames -> encode -> directions ->
render on the bundled sample clip, with the bundled config and models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sg3pipe.io.tables import read_table
from sg3pipe.stages.directions import direction_samples, directions
from sg3pipe.stages.encode import encode
from sg3pipe.stages.frames import frames
from sg3pipe.stages.render import pti_outputs, render
from sg3pipe.video.decode import read_all_frames
from sg3pipe.workflow_config import resolve_config

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 12


@pytest.mark.slow
def test_frames_encode_directions_render_run_as_plain_functions(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["directions"].update(samples=200, chunk=200, batch=50, ratio=0.1)
    config["pti"].update(steps=4, checkpoint_every=2)
    config["render"]["batch"] = 6
    config["metrics"]["identity"] = False
    config["edits"] = config["edits"][:1] + config["edits"][2:]  # one edit in W, one in S
    config = resolve_config(config, ROOT)
    config["device"] = "cpu"
    models = {name: str(ROOT / path) for name, path in config["models"].items() if isinstance(path, str)}
    video = tmp_path / "synth_a"
    table = {name: str(video / f"{name}.parquet") for name in ("frames", "latents", "smoothed", "metrics")}
    crops = {"aligned": str(video / "aligned.mkv"), "crops": str(video / "crops.mkv")}

    sections = {key: config[key] for key in ("ingest", "landmarks", "faces", "align")}
    frames({"video": str(ROOT / "samples" / "synth_a.mp4")}, {"table": table["frames"], **crops},
           {**sections, "clip": {"max_frames": FRAMES}})  # fmt: skip
    encode({"table": table["frames"], **crops, "model": models["encoder"]}, {"table": table["latents"]},
           {"encode": config["encode"], "device": "cpu"})  # fmt: skip
    found = tmp_path / "directions" / "directions.parquet"
    scorer = {**config["models"]["scorer"], "path": str(ROOT / config["models"]["scorer"]["path"])}
    samples = str(tmp_path / "directions" / "samples.parquet")
    direction_samples({"generator": models["generator"], "scorer": scorer["path"]}, {"samples": samples},
                      {"directions": config["directions"], "scorer": scorer, "device": "cpu",
                       "workdir": str(tmp_path / "chunks")})  # fmt: skip
    directions({"samples": samples, "generator": models["generator"]},
               {"table": str(found), "html": str(tmp_path / "directions" / "directions.html")},
               {"directions": config["directions"], "device": "cpu", "clip": None})  # fmt: skip
    outputs = {name: path.format(video="synth_a") for name, path in pti_outputs(config["pti"]).items()}
    outputs = {name: str(tmp_path / path.removeprefix("results/")) for name, path in outputs.items()}
    outputs.update(edits=str(video / "edits"), smoothed=table["smoothed"], trajectory=str(video / "trajectory.png"),
                   videos=str(video / "videos"), metrics=table["metrics"], plot=str(video / "metrics.png"))  # fmt: skip
    inputs = {"video": str(ROOT / "samples" / "synth_a.mp4"), "frames": table["frames"], "latents": table["latents"],
              "crops": crops["crops"], "directions": str(found), "generator": models["generator"]}  # fmt: skip
    sections = {key: config[key] for key in ("pti", "edits", "smooth", "render", "metrics")}
    render(inputs, outputs, {**sections, "device": "cpu", "lpips": None, "pti_workdir": str(video / "pti" / "work")})

    for name in ("frames", "latents", "smoothed", "metrics"):
        assert len(read_table(table[name])[0]) == FRAMES, name
    assert len(read_table(outputs["losses"])[0]) == 4  # one row per PTI step
    videos = sorted(Path(outputs["videos"]).glob("*.mp4"))
    assert {"pti", "edit-smile-2", "edit-smile_s--2", "pasteback-smile-2", "side_by_side"} <= {v.stem for v in videos}
    assert all(len(read_all_frames(v)) == FRAMES for v in videos)
