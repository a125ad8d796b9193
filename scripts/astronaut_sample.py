"""Snakemake adapter of rule `astronaut_sample`: the real-photo sample clip and its ground truth."""

import logging

from sg3pipe.synth.photo_clip import make_photo_clip

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
make_photo_clip(snakemake.output.video, snakemake.output.truth)
