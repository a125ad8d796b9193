"""Snakemake adapter of rule `directions`: fit a W boundary and a StyleSpace direction per scored attribute."""

import logging

from sg3pipe.editing.direction_finding import DirectionSettings, find_directions
from sg3pipe.editing.sampling import sample_arrays
from sg3pipe.io.html import html_table
from sg3pipe.io.tables import read_table
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    opts = snakemake.params.settings
    samples, metadata = read_table(snakemake.input.samples)
    settings = DirectionSettings(ratio=opts["ratio"], seed=opts["seed"], style_top_k=opts["style_top_k"])
    record = {**metadata["provenance"], "directions": opts}
    table = find_directions(
        samples, sample_arrays(samples, metadata), snakemake.params.outdir, settings, opts["pretrained"], record
    )
    logging.info("directions:\n%s", table.drop(columns="channels").to_string())
    html_table(snakemake.output.html, table.drop(columns="channels"), "Editing directions")
