"""Snakemake adapter of rule `smooth`: a video's smoothed latents and transforms, and their trajectory plot."""

from sg3pipe.io.tables import read_table
from sg3pipe.plots import trajectory_plot
from sg3pipe.provenance import provenance
from sg3pipe.scripting import job_logging
from sg3pipe.temporal import smooth_video, smoothing_settings

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    settings = smoothing_settings(snakemake.params.smooth)
    record = provenance({"smooth": snakemake.params.smooth})
    smooth_video(snakemake.input.frames, snakemake.input.latents, snakemake.output.table, settings, record)
    truth = read_table(snakemake.input.truth)[0] if "truth" in snakemake.input.keys() else None
    frames, smoothed = read_table(snakemake.input.frames)[0], read_table(snakemake.output.table)[0]
    trajectory_plot(snakemake.output.trajectory, frames, smoothed, truth)
