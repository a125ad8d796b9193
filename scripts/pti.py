"""Snakemake adapter of rule `pti`: a video's pivotal tuning."""

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.metrics.lpips_loader import load_lpips
from sg3pipe.provenance import provenance
from sg3pipe.pti import pti_settings, tune_video
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    G = load_generator(snakemake.input.generator, device)
    lpips_spec = snakemake.params.lpips
    lpips = load_lpips(lpips_spec["weights"], lpips_spec["net"], device) if lpips_spec else None
    tune_video(
        {name: snakemake.input[name] for name in ("frames", "latents", "crops")},
        G,
        pti_settings(snakemake.params.pti),
        snakemake.params.workdir,
        dict(snakemake.output.items()),
        lpips=lpips,
        provenance=provenance({"pti": snakemake.params.pti}, {"generator": snakemake.input.generator}),
    )
