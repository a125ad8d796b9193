"""Snakemake adapter of rule `frames`: one video -> frames.parquet, aligned.mkv, crops.mkv."""

import contextlib
import logging

from sg3pipe.frames import build_frames

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

# tqdm progress, library warnings and the error, if any, go to the rule's log.
with open(snakemake.log[0], "w") as log_file, contextlib.redirect_stderr(log_file):
    logging.basicConfig(stream=log_file, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
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
    except Exception:
        logging.exception("rule frames failed for %s", snakemake.input.video)
        raise
