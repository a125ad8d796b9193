"""Snakemake adapter of rule `flip_table`: how often each direction's edit flips each attribute."""

import logging
from pathlib import Path

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.classifiers import load_scorer
from sg3pipe.editing.flips import describe_flips, flip_tables
from sg3pipe.editing.sampling import SamplingSettings
from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.html import html_table
from sg3pipe.io.tables import write_frame
from sg3pipe.provenance import provenance
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    opts, analysis = snakemake.params.settings, snakemake.params.analysis
    settings = SamplingSettings(truncation_psi=opts["truncation_psi"], pseudo_align=opts["pseudo_align"])
    G = load_generator(snakemake.input.generator, device)
    scorer = load_scorer(snakemake.params.scorer, device)
    factor, n = analysis["flip_factor"], analysis["flip_samples"]
    table = flip_tables(G, scorer, Path(snakemake.input.directions).parent, factor, n, settings)
    text = describe_flips(table, factor, n)
    logging.info("\n%s", text)
    models = {"generator": snakemake.input.generator, "scorer": snakemake.input.scorer}
    record = provenance({"analysis": analysis}, models)
    write_frame(snakemake.output.table, table, {"provenance": record})
    with atomic_path(snakemake.output.text) as tmp:
        tmp.write_text(text)
    html_table(snakemake.output.html, table, f"Flip rates at {factor} std over {n} held-out samples")
