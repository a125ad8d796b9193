"""Snakemake adapter of rule `render`: a video's pivotal tuning, its edits, its smoothed latents and transforms,
its rendered videos and per-frame metrics, in the paper's order (edits before smoothing)."""

from pathlib import Path

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.video_edits import write_video_edits
from sg3pipe.io.tables import read_table
from sg3pipe.metrics.identity import IdentityModel
from sg3pipe.metrics.lpips_loader import load_lpips
from sg3pipe.plots import metrics_plot, trajectory_plot
from sg3pipe.provenance import provenance
from sg3pipe.pti import pti_settings, tune_video
from sg3pipe.render.face_parsing import load_face_parser
from sg3pipe.render.videos import render_outputs, render_settings
from sg3pipe.scripting import job_logging
from sg3pipe.temporal import smooth_video, smoothing_settings

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    inputs, outputs, params = snakemake.input, snakemake.output, snakemake.params
    G = load_generator(inputs.generator, device)
    lpips_spec = params.lpips
    lpips = load_lpips(lpips_spec["weights"], lpips_spec["net"], device) if lpips_spec else None

    G_pti = G
    if params.pti["enabled"]:
        tuning = {k: v for k, v in params.pti.items() if k not in ("enabled", "keep_generator")}
        pti_outputs = {"losses": outputs.losses, "curve": outputs.curve}
        if params.pti["keep_generator"]:
            pti_outputs["generator"] = Path(outputs.losses).with_name("generator.safetensors")
        result = tune_video(
            {name: inputs[name] for name in ("frames", "latents", "crops")},
            G,  # tuned as a copy: G itself still renders the un-tuned variants
            pti_settings(tuning),
            params.pti_workdir,
            pti_outputs,
            lpips=lpips,
            provenance=provenance({"pti": tuning}, {"generator": inputs.generator}),
        )
        if not result.done:
            raise RuntimeError("PTI stopped before its last step; rerun the job to resume from its checkpoint")
        G_pti = result.generator

    edits = write_video_edits(
        inputs.latents, Path(inputs.directions).parent, params.edits, outputs.edits, G, inputs.generator
    )

    smoothing = smoothing_settings(params.smooth)
    smooth_video(inputs.frames, inputs.latents, outputs.smoothed, smoothing, provenance({"smooth": params.smooth}))
    truth = read_table(inputs.truth)[0] if "truth" in inputs.keys() else None
    frames, smoothed = read_table(inputs.frames)[0], read_table(outputs.smoothed)[0]
    trajectory_plot(outputs.trajectory, frames, smoothed, truth)

    paths = {name: inputs[name] for name in ("frames", "latents", "crops", "video")}
    paths.update(smoothed=outputs.smoothed, out_dir=Path(outputs.videos), metrics=outputs.metrics)
    paths["pti_losses"] = outputs.losses if params.pti["enabled"] else None
    models = {"generator": inputs.generator}
    parser = None
    if "face_parser" in inputs.keys():
        parser = load_face_parser({**params.render["face_parser"], "path": inputs.face_parser}, device)
        models["face_parser"] = inputs.face_parser
    # dlib's identity network is single-threaded: one worker process per thread of the job
    identity = IdentityModel(workers=snakemake.threads) if params.identity else None
    render_outputs(
        paths,
        edits,
        G,
        G_pti,
        render_settings(params.render),
        smoothing,
        identity=identity,
        lpips=lpips,
        provenance=provenance({"render": params.render, "smooth": params.smooth}, models),
        parser=parser,
    )
    if identity is not None:
        identity.close()
    metrics_plot(outputs.plot, read_table(outputs.metrics)[0])
