"""Snakemake adapter of rule `encode`: frames.parquet + aligned.mkv -> latents.parquet."""

import contextlib
import logging

import torch

from sg3pipe.inversion import invert_video

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

# tqdm progress, library warnings and the error, if any, go to the rule's log.
with open(snakemake.log[0], "w") as log_file, contextlib.redirect_stderr(log_file):
    logging.basicConfig(stream=log_file, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(snakemake.threads)
    try:
        invert_video(
            snakemake.input.table,
            snakemake.input.aligned,
            snakemake.output.table,
            config={"encode": snakemake.params.encode, "device": snakemake.params.device},
            model_file=snakemake.input.model,
            crops_video=snakemake.input.crops if snakemake.params.encode["render_with_transform"] else None,
        )
    except Exception:
        logging.exception("rule encode failed for %s", snakemake.input.aligned)
        raise
