"""Snakemake adapter of rule `astronaut_sample`: the real-photo sample clip and its ground truth."""

from sg3pipe.scripting import job_logging
from sg3pipe.synth.photo_clip import make_photo_clip

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    make_photo_clip(snakemake.output.video, snakemake.output.truth)
