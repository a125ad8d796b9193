"""Snakemake adapter of rule `smooth`: a video's smoothed latents and transforms."""

from sg3pipe.provenance import provenance
from sg3pipe.scripting import job_logging
from sg3pipe.temporal import smooth_video, smoothing_settings

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    settings = smoothing_settings(snakemake.params.smooth)
    record = provenance({"smooth": snakemake.params.smooth})
    smooth_video(snakemake.input.frames, snakemake.input.latents, snakemake.output.table, settings, record)
