"""Snakemake adapter of rule `synth_samples`: render the synthetic sample clips and their ground truth."""

import logging

from sg3pipe.scripting import job_logging
from sg3pipe.synth.clips import ClipSpec, write_clip

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    specs = snakemake.params.clips  # clip id -> ClipSpec fields, in the order of the outputs
    for clip, video, truth in zip(specs, snakemake.output.videos, snakemake.output.truths, strict=True):
        logging.info("rendering clip %s", clip)
        write_clip(video, truth, ClipSpec(**specs[clip]))
