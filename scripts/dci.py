"""Snakemake adapter of rule `dci`: DCI of W, W+ and StyleSpace against the scores and, for the synthetic
world, the renderer's true attribute parameters."""

import logging

from sg3pipe import load_encoder, load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.dci_table import dci_factors, dci_table, encoder_codes
from sg3pipe.editing.sampling import SamplingSettings, sample_arrays
from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.html import html_table
from sg3pipe.io.tables import read_table, write_frame
from sg3pipe.provenance import provenance
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    opts, analysis = snakemake.params.settings, snakemake.params.analysis
    samples, metadata = read_table(snakemake.input.samples)
    samples = samples.iloc[: analysis["dci_samples"]]
    arrays = sample_arrays(samples, metadata)
    G = load_generator(snakemake.input.generator, device)
    settings = SamplingSettings(truncation_psi=opts["truncation_psi"], pseudo_align=opts["pseudo_align"])
    codes = {"W": arrays["w"], "S": arrays["s"]}
    models = {"generator": snakemake.input.generator}
    if snakemake.input.encoder:
        encoder = load_encoder(snakemake.input.encoder, device)
        codes["W+ (encoder)"] = encoder_codes(G, encoder, arrays["w"], settings)
        models["encoder"] = snakemake.input.encoder
    factors = dci_factors(samples, arrays, analysis["renderer_factors"])
    table = dci_table(codes, factors, analysis["dci_regressor"], jobs=snakemake.threads)
    text = table.round(3).to_string(index=False)
    logging.info("\n%s", text)
    record = provenance({"analysis": analysis}, models)
    write_frame(snakemake.output.table, table, {"provenance": record})
    with atomic_path(snakemake.output.text) as tmp:
        tmp.write_text(f"DCI ({analysis['dci_regressor']} importances, {len(samples)} samples)\n{text}\n")
    html_table(snakemake.output.html, table, f"DCI ({analysis['dci_regressor']} importances, {len(samples)} samples)")
