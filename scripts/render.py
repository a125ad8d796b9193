"""Snakemake adapter of rule `render`: a video's rendered videos and per-frame metrics."""

from pathlib import Path

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.video_edits import edit_table_path
from sg3pipe.io.tables import read_table
from sg3pipe.metrics.identity import IdentityModel
from sg3pipe.metrics.lpips_loader import load_lpips
from sg3pipe.plots import metrics_plot
from sg3pipe.provenance import provenance
from sg3pipe.render.videos import render_outputs, render_settings
from sg3pipe.scripting import job_logging
from sg3pipe.temporal import smoothing_settings

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    inputs = snakemake.input
    G = load_generator(inputs.generator, device)
    G_pti = load_generator(inputs.pti, device) if "pti" in inputs.keys() else G
    lpips_spec = snakemake.params.lpips
    lpips = load_lpips(lpips_spec["weights"], lpips_spec["net"], device) if lpips_spec else None
    paths = {name: inputs[name] for name in ("frames", "latents", "smoothed", "crops", "video")}
    paths.update(out_dir=Path(snakemake.output.videos), metrics=snakemake.output.metrics)
    paths["pti_losses"] = inputs.pti_losses if "pti_losses" in inputs.keys() else None
    models = {"generator": inputs.generator, **({"pti": inputs.pti} if G_pti is not G else {})}
    render_outputs(
        paths,
        [edit_table_path(inputs.edits, name) for name in snakemake.params.edits],
        G,
        G_pti,
        snakemake.params.clip,
        render_settings(snakemake.params.render),
        smoothing_settings(snakemake.params.smooth),
        identity=IdentityModel() if snakemake.params.identity else None,
        lpips=lpips,
        provenance=provenance({"render": snakemake.params.render, "smooth": snakemake.params.smooth}, models),
    )
    metrics_plot(snakemake.output.plot, read_table(snakemake.output.metrics)[0])
