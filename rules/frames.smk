# Stage 1 of the per-video chain: decode, landmarks, FFHQ-aligned crops, unaligned crops, crop transforms.
# Library: sg3pipe.frames (build_frames). Outputs per video: results/{video}/frames.parquet (one row per
# decoded frame), aligned.mkv and crops.mkv (lossless, one frame per row).
import pandas as pd

from sg3pipe.manifest import load_manifest


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


rule frames:
    input:
        unpack(frames_inputs),
    output:
        table="results/{video}/frames.parquet",
        aligned="results/{video}/aligned.mkv",
        crops="results/{video}/crops.mkv",
    params:
        options=frames_options,
    log:
        "logs/frames/{video}.log",
    benchmark:
        "benchmarks/out/frames/{video}.tsv"
    threads: 2  # the landmark loop, plus ffmpeg decoding and the two FFV1 encoders beside it
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,  # minutes; ~30 frames/s for 64-px crops on a CPU
    script:
        "../scripts/frames.py"


rule astronaut_sample:
    """Rebuild the real-photo sample clip and its ground truth (sg3pipe.synth.photo_clip)."""
    output:
        video="samples/astronaut.mp4",
        truth="samples/astronaut.truth.parquet",
    log:
        "logs/astronaut_sample.log",
    benchmark:
        "benchmarks/out/astronaut_sample.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/astronaut_sample.py"
