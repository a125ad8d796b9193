# Shared helpers of all rule files: model paths, the manifest, input functions of the per-video rules.
from pathlib import Path

import pandas as pd

from sg3pipe.manifest import load_manifest
from sg3pipe.render.variants import factor_label


def model_path(name):
    """Path of a configured model (config `models.NAME`), relative to the workflow when not absolute."""
    path = Path(config["models"][name])
    return str(path if path.is_absolute() else Path(workflow.basedir) / path)


def video_ids():
    """The ids of the manifest's videos (config `samples`), in manifest order."""
    return list(load_manifest(config["samples"])["id"])

def manifest_row(video):
    """The manifest row of a video id as a dict (`id`, absolute `path`, optional per-video options)."""
    table = load_manifest(config["samples"])
    rows = table[table["id"] == video]
    if rows.empty:
        raise ValueError(
            f"video {video!r} is not in the manifest {config['samples']}: add a row `{video}<TAB>PATH` "
            "or ask for one of its ids"
        )
    return {k: v for k, v in rows.iloc[0].to_dict().items() if not (pd.api.types.is_scalar(v) and pd.isna(v))}


def frames_inputs(wildcards):
    """The video and, when the manifest lists them, its landmarks table and face track."""
    row = manifest_row(wildcards.video)
    return {"video": row["path"], **{k: row[k] for k in ("landmarks", "face_track") if k in row}}


def frames_options(wildcards):
    """The clip of the video to use: the manifest's start_s, end_s, max_frames when given."""
    row = manifest_row(wildcards.video)
    options = {k: float(row[k]) for k in ("start_s", "end_s") if k in row}
    if "max_frames" in row:
        options["max_frames"] = int(row["max_frames"])
    return options

def encode_model(wildcards):
    """The model file of `encode.method`: models.encoder for `encoder`, models.generator for `projector`."""
    name = "encoder" if config["encode"]["method"] == "encoder" else "generator"
    if not config["models"].get(name):
        raise ValueError(
            f"encode.method is {config['encode']['method']!r} but models.{name} is not set: point models.{name} at "
            "a model file, or run the optimisation-based inversion with --config encode='{method: projector}'"
        )
    return model_path(name)


def generator_name():
    """The configured generator's file name without its extension: the folder of its directions."""
    return Path(config["models"]["generator"]).stem


def scorer_spec():
    """models.scorer with its path resolved against the workflow folder when relative."""
    spec = dict(config["models"]["scorer"])
    path = Path(spec["path"])
    spec["path"] = str(path if path.is_absolute() else Path(workflow.basedir) / path)
    return spec


def edit_spec(name):
    """The config entry of the edit called `name`."""
    for edit in config["edits"]:
        if edit["name"] == name:
            return edit
    raise ValueError(f"no edit {name!r} in the config's `edits`: use one of {[e['name'] for e in config['edits']]}")


def lpips_spec():
    """The LPIPS backbone of config encode (weights path resolved, or None: no LPIPS) and its net."""
    weights = config["encode"].get("lpips_weights")
    if not weights:
        return None
    path = Path(weights)
    return {"weights": str(path if path.is_absolute() else Path(workflow.basedir) / path), "net": config["encode"]["lpips_net"]}


def rendered_videos():
    """The names of the videos rule render writes per source video (sg3pipe.render.videos)."""
    edits = [f"{e['name']}-{factor_label(f)}" for e in config["edits"] for f in e["factors"]]
    names = ["reconstruction", "smoothed", "pti", *(f"edit-{e}" for e in edits), "fov", "side_by_side"]
    return names + ([f"pasteback-{e}" for e in edits] if config["render"]["pasteback"] else [])


def render_inputs(wildcards):
    """The per-video tables and videos rule render reads, the source video, the edits and the generators."""
    video = wildcards.video
    inputs = {
        "video": frames_inputs(wildcards)["video"],
        **{name: f"results/{video}/{name}.parquet" for name in ("frames", "latents", "smoothed")},
        "crops": f"results/{video}/crops.mkv",
        "aligned": f"results/{video}/aligned.mkv",
        "edits": [f"results/{video}/edits/{e['name']}.parquet" for e in config["edits"]],
        "generator": model_path("generator"),
    }
    if config["pti"]["enabled"]:
        inputs["pti"] = f"results/{video}/pti/generator.safetensors"
        inputs["pti_losses"] = f"results/{video}/pti/loss.parquet"
    return inputs
