"""Snakemake adapter of rule `frames`: one video -> frames.parquet, aligned.mkv, crops.mkv."""

from sg3pipe.frames import build_frames
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    build_frames(
        snakemake.input.video,
        snakemake.output.table,
        snakemake.output.aligned,
        snakemake.output.crops,
        config=snakemake.config,
        landmarks=snakemake.input.get("landmarks"),
        face_track=snakemake.input.get("face_track"),
        **snakemake.params.options,
    )
