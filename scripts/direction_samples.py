"""Snakemake adapter of rule `direction_samples`: sample, render and score latents in resumable chunks."""

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.classifiers import load_scorer
from sg3pipe.editing.sampling import SamplingSettings, join_chunks, sample_to_chunks
from sg3pipe.provenance import provenance
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    opts = snakemake.params.settings
    names = ("seed", "truncation_psi", "pseudo_align", "chunk", "batch")
    settings = SamplingSettings(n=opts["samples"], **{k: opts[k] for k in names})
    G = load_generator(snakemake.input.generator, device)
    scorer = load_scorer(snakemake.params.scorer, device)
    models = {"generator": snakemake.input.generator, "scorer": snakemake.input.scorer}
    paths = sample_to_chunks(G, scorer, snakemake.params.workdir, settings, provenance({"directions": opts}, models))
    join_chunks(paths, snakemake.output.samples)
