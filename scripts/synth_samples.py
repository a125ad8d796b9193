"""Snakemake adapter of rule `synth_samples`: render the synthetic sample clips and their ground truth."""

import contextlib
import logging

from sg3pipe.synth.clips import ClipSpec, write_clip

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

# tqdm progress and the error, if any, go to the rule's log.
with open(snakemake.log[0], "w") as log_file, contextlib.redirect_stderr(log_file):
    logging.basicConfig(stream=log_file, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    specs = snakemake.params.clips  # clip id -> ClipSpec fields, in the order of the outputs
    for clip, video, truth in zip(specs, snakemake.output.videos, snakemake.output.truths, strict=True):
        try:
            write_clip(video, truth, ClipSpec(**specs[clip]))
        except Exception:
            logging.exception("rule synth_samples failed for clip %s", clip)
            raise
