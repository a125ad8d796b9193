"""Snakemake adapter of rule `rotation_control`: which rows of W+ move the face (the paper's section 2.1)."""

import logging

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.rotation_control import rotation_control, summarize
from sg3pipe.faces.landmarks import make_detector, make_predictor
from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.tables import write_frame
from sg3pipe.metrics.identity import IdentityModel
from sg3pipe.plots import rotation_control_plot
from sg3pipe.provenance import provenance
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    opts, analysis = snakemake.params.settings, snakemake.params.analysis
    G = load_generator(snakemake.input.generator, device)
    table, grids = rotation_control(
        G,
        make_detector("hog", upsample=0),
        make_predictor("dlib"),
        IdentityModel(),
        n=analysis["rotation_samples"],
        k=analysis["rotation_variants"],
        seed=analysis["rotation_seed"],
        truncation_psi=opts["truncation_psi"],
    )
    summary = summarize(table)
    text = summary.round(4).to_string()
    logging.info("\n%s", text)
    record = provenance({"analysis": analysis}, {"generator": snakemake.input.generator})
    write_frame(snakemake.output.table, table, {"provenance": record})
    with atomic_path(snakemake.output.text) as tmp:
        tmp.write_text(
            "Mean absolute change against the base image (angles in degrees, shifts in image widths; identity: "
            f"dlib cosine similarity) over {analysis['rotation_samples']} bases x "
            f"{analysis['rotation_variants']} variants\n{text}\n"
        )
    rotation_control_plot(snakemake.output.grid, grids, summary)
