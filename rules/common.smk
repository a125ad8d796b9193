# Shared helpers of the workflow (model paths, the manifest, input functions of the per-video rules).
from pathlib import Path

import pandas as pd

from sg3pipe.failures import report_failures, write_failures
from sg3pipe.manifest import id_pattern, load_manifest

# The conda environment of each rule, relative to the rule files. With `--use-conda`, Snakemake builds it from
# environment.yml, then runs environment.post-deploy.sh in it, which installs this checkout's sg3pipe.
CONDA_ENV = "../environment.yml"


def gpu_count():
    """The `gpu` resource of GPU-capable jobs: 1 when config `device` names CUDA, else 0 (`auto` and `cpu` ask
    for none, so a CPU cluster never waits for a GPU; profiles/slurm asks for one in each GPU-capable job)."""
    return 1 if str(config["device"]).startswith("cuda") else 0


def workflow_path(path):
    """A configured file's path as a string, resolved against the workflow folder when relative."""
    path = Path(path)
    return str(path if path.is_absolute() else Path(workflow.basedir) / path)


def model_path(name):
    """Path of a configured model (config `models.NAME`), relative to the workflow when not absolute."""
    return workflow_path(config["models"][name])


# The manifest, read and validated once per workflow run: every input function below looks rows up here, so
# building the DAG costs one read of the manifest, not one per job, and grows linearly with the number of videos.
MANIFEST = {
    video: {k: v for k, v in row.items() if not (pd.api.types.is_scalar(v) and pd.isna(v))}
    for video, row in load_manifest(config["samples"]).to_dict(orient="index").items()
}


wildcard_constraints:
    video=id_pattern(),


def video_ids():
    """The ids of the manifest's videos (config `samples`), in manifest order."""
    return list(MANIFEST)


def manifest_row(video):
    """The manifest row of a video id as a dict (`id`, absolute `path`, optional per-video options)."""
    if video not in MANIFEST:
        raise ValueError(
            f"video {video!r} is not in the manifest {config['samples']}: add a row `{video}<TAB>PATH` "
            "or ask for one of its ids"
        )
    return MANIFEST[video]


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


def encode_model():
    """The model file of `encode.method`: models.encoder for `encoder`, models.generator for `projector`. The same
    for every video, so rule encode takes it as a string (an input function would cost every job a call)."""
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
    spec["path"] = workflow_path(spec["path"])
    return spec


def lpips_spec():
    """The LPIPS backbone of config encode (weights path resolved, or None: no LPIPS) and its net."""
    weights = config["encode"].get("lpips_weights")
    if not weights:
        return None
    return {"weights": workflow_path(weights), "net": config["encode"]["lpips_net"]}


def render_inputs(wildcards):
    """The inputs of rule `render`, the source video, its ground-truth table when the manifest names one, the
    per-video tables and crops, the directions, the generator and the face parser when one is configured."""
    video = wildcards.video
    row = manifest_row(video)
    inputs = {
        "video": row["path"],
        **({"truth": row["truth"]} if "truth" in row else {}),
        **{name: f"results/{video}/{name}.parquet" for name in ("frames", "latents")},
        "crops": f"results/{video}/crops.mkv",
        "directions": f"{DIRECTIONS}/directions.parquet",  # written by rules/directions.smk
        "generator": model_path("generator"),
    }
    parser = config["render"].get("face_parser")
    if parser:
        inputs["face_parser"] = workflow_path(parser["path"])
    return inputs
