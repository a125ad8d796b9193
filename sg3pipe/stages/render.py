"""Rule file ``rules/render.smk``: a video's pivotal tuning, its edits, its smoothed latents and transforms, every
video a user watches and the per-frame metrics, in the paper's order (edits before smoothing); and the run's
summary and failures tables.

This module owns config sections ``pti``, ``edits``, ``smooth``, ``render`` and ``metrics``: which outputs they
add (:func:`pti_outputs`) and how each is used.
"""

from __future__ import annotations

from pathlib import Path

PTI_RULE_KEYS = ("enabled", "keep_generator")  # pti.* that decide what the render job does, not how PTI tunes


def pti_outputs(pti: dict) -> dict[str, str]:
    """The extra outputs of rule render that config section ``pti`` asks for: the loss table and curve of each
    video when PTI is enabled (with PTI off every video renders with models.generator itself)."""
    if not pti["enabled"]:
        return {}
    return {"losses": "results/{video}/pti/loss.parquet", "curve": "results/{video}/pti/loss.png"}


def render(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Tune, edit, smooth, render and measure one video.

    Args:
        inputs: ``video`` (the source), ``frames``, ``latents`` (tables), ``crops`` (crops.mkv), ``directions``
            (directions.parquet, in its directions folder), ``generator``; optional ``truth`` (a ground-truth
            table, plotted with the trajectory) and ``face_parser``.
        outputs: ``edits`` (folder), ``smoothed``, ``trajectory``, ``videos`` (folder), ``metrics``, ``plot``;
            with PTI ``losses`` and ``curve`` (:func:`pti_outputs`).
        config: sections ``pti``, ``edits``, ``smooth``, ``render``, ``metrics``, ``device``, ``lpips`` (the
            resolved LPIPS weights and net, or None) and ``pti_workdir`` (the tuning's checkpoint folder).
        threads: dlib's identity network is single-threaded, so the identity metric runs one worker process
            per thread.
    """
    from sg3pipe import load_generator
    from sg3pipe.devices import pick_device
    from sg3pipe.editing.video_edits import write_video_edits
    from sg3pipe.io.tables import read_table
    from sg3pipe.metrics.identity import IdentityModel
    from sg3pipe.metrics.lpips_loader import load_lpips
    from sg3pipe.plots import metrics_plot, trajectory_plot
    from sg3pipe.provenance import provenance
    from sg3pipe.render.face_parsing import load_face_parser
    from sg3pipe.render.videos import render_outputs, render_settings
    from sg3pipe.temporal import smooth_video, smoothing_settings

    device = pick_device(config["device"])
    G = load_generator(inputs["generator"], device)
    lpips_spec = config["lpips"]
    lpips = load_lpips(lpips_spec["weights"], lpips_spec["net"], device) if lpips_spec else None
    G_pti = _tuned(inputs, outputs, config, G, lpips) if config["pti"]["enabled"] else G

    edits = write_video_edits(
        inputs["latents"], Path(inputs["directions"]).parent, config["edits"], outputs["edits"], G, inputs["generator"]
    )
    smoothing = smoothing_settings(config["smooth"])
    smooth_video(inputs["frames"], inputs["latents"], outputs["smoothed"], smoothing,
                 provenance({"smooth": config["smooth"]}))  # fmt: skip
    truth = read_table(inputs["truth"])[0] if inputs.get("truth") else None
    frames, smoothed = read_table(inputs["frames"])[0], read_table(outputs["smoothed"])[0]
    trajectory_plot(outputs["trajectory"], frames, smoothed, truth)

    paths = {name: inputs[name] for name in ("frames", "latents", "crops", "video")}
    paths.update(smoothed=outputs["smoothed"], out_dir=Path(outputs["videos"]), metrics=outputs["metrics"])
    paths["pti_losses"] = outputs.get("losses")
    models = {"generator": inputs["generator"]}
    parser = None
    if inputs.get("face_parser"):
        parser = load_face_parser({**config["render"]["face_parser"], "path": inputs["face_parser"]}, device)
        models["face_parser"] = inputs["face_parser"]
    identity = IdentityModel(workers=threads) if config["metrics"]["identity"] else None
    try:
        render_outputs(
            paths,
            edits,
            G,
            G_pti,
            render_settings(config["render"]),
            smoothing,
            identity=identity,
            lpips=lpips,
            provenance=provenance({"render": config["render"], "smooth": config["smooth"]}, models),
            parser=parser,
        )
    finally:
        if identity is not None:
            identity.close()
    metrics_plot(outputs["plot"], read_table(outputs["metrics"])[0])
    if config["pti"]["enabled"] and not config["pti"]["keep_checkpoint"]:
        from sg3pipe.training import remove_checkpoint

        remove_checkpoint(config["pti_workdir"])  # only now: a job killed while rendering resumes at the last step


def _tuned(inputs: dict, outputs: dict, config: dict, G, lpips):
    """The generator tuned on the video (PTI; ``G`` itself is left as it is), its losses and curve written, and
    with ``pti.keep_generator`` the tuned file beside them. The checkpoint stays until :func:`render` has written
    the videos, so that a rerun after a job killed while rendering does not tune again."""
    from sg3pipe.provenance import provenance
    from sg3pipe.pti import pti_settings, tune_video

    tuning = {key: value for key, value in config["pti"].items() if key not in PTI_RULE_KEYS}
    written = {"losses": outputs["losses"], "curve": outputs["curve"]}
    if config["pti"]["keep_generator"]:
        written["generator"] = Path(outputs["losses"]).with_name("generator.safetensors")
    result = tune_video(
        {name: inputs[name] for name in ("frames", "latents", "crops")},
        G,
        pti_settings({**tuning, "keep_checkpoint": True}),
        config["pti_workdir"],
        written,
        lpips=lpips,
        provenance=provenance({"pti": tuning}, {"generator": inputs["generator"]}),
    )
    if not result.done:
        raise RuntimeError("PTI stopped before its last step; rerun the job to resume from its checkpoint")
    return result.generator


def summary(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """One row per video and face track (``inputs["metrics"]``, a list of metrics tables): ``outputs["table"]`` and
    ``html``."""
    from sg3pipe.io.html import html_table
    from sg3pipe.metrics.summary import write_summary

    table = write_summary(list(inputs["metrics"]), outputs["table"])
    html_table(outputs["html"], table, "Run summary: one row per video and face track")


def failures(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """The failures table (Parquet, TSV, HTML at ``outputs["table"]``) from the failure records under the logs
    folder ``config["logs"]``."""
    from sg3pipe.failures import write_failures

    write_failures(config["logs"], outputs["table"])
