"""Snakemake adapter of rule `generator_preview`: sample grid and transform strips of the generator."""

import logging

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.provenance import provenance
from sg3pipe.render.preview import sample_grid, save_png, transform_strip
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    opts = snakemake.params.preview
    device = pick_device(snakemake.params.device)
    G = load_generator(snakemake.input.generator, device=device)
    record = provenance(config={"preview": opts}, models={"generator": snakemake.input.generator})
    logging.info("rendering previews of %s on %s", snakemake.input.generator, device)
    save_png(snakemake.output.grid, sample_grid(G, opts["seeds"], opts["truncation_psi"], device), record)
    save_png(snakemake.output.strip, transform_strip(G, 0, opts["truncation_psi"], opts["strip_steps"], device), record)
