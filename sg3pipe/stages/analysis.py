"""Rule file ``rules/analysis.smk``: how the configured generator's directions and layers behave (the flip
table, the DCI table and the paper's rotation-control analysis, section 2.1 of Alaluf et al. 2022)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def flip_table(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """How often each direction's edit flips each attribute, on held-out samples.

    Args:
        inputs: ``generator``, ``scorer``, ``directions`` (directions.parquet, in its directions folder).
        outputs: ``table``, ``text``, ``html``.
        config: sections ``analysis`` (``flip_factor``, ``flip_samples``), ``directions`` (truncation and
            pseudo-alignment of the renders), ``scorer`` (models.scorer, path resolved) and ``device``.
    """
    from sg3pipe import load_generator
    from sg3pipe.devices import pick_device
    from sg3pipe.editing.classifiers import load_scorer
    from sg3pipe.editing.flips import describe_flips, flip_tables
    from sg3pipe.stages import scorer_kinds_registered

    device = pick_device(config["device"])
    analysis = config["analysis"]
    G = load_generator(inputs["generator"], device)
    scorer_kinds_registered()
    scorer = load_scorer(config["scorer"], device)
    factor, n = analysis["flip_factor"], analysis["flip_samples"]
    table = flip_tables(G, scorer, Path(inputs["directions"]).parent, factor, n, _render_settings(config))
    models = {"generator": inputs["generator"], "scorer": inputs["scorer"]}
    title = f"Flip rates at {factor} std over {n} held-out samples"
    write_analysis(outputs, table, describe_flips(table, factor, n), title, {"analysis": analysis}, models)


def dci(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """DCI of W, W+ (the encoder's inversions of the samples, when ``inputs["encoder"]`` is given) and StyleSpace
    against the scores and, with ``analysis.renderer_factors``, the synthetic renderer's true parameters.

    Args:
        inputs: ``samples`` (samples.parquet), ``generator``, ``encoder`` (a path, or empty for none).
        outputs: ``table``, ``text``, ``html``.
        config: sections ``analysis`` (``dci_samples``, ``dci_regressor``, ``renderer_factors``), ``directions``
            and ``device``.
    """
    from sg3pipe import load_encoder, load_generator
    from sg3pipe.devices import pick_device
    from sg3pipe.editing.dci_table import dci_factors, dci_table, encoder_codes
    from sg3pipe.editing.sampling import sample_arrays
    from sg3pipe.io.tables import read_table

    device = pick_device(config["device"])
    analysis = config["analysis"]
    samples, metadata = read_table(inputs["samples"])
    samples = samples.iloc[: analysis["dci_samples"]]
    arrays = sample_arrays(samples, metadata)
    G = load_generator(inputs["generator"], device)
    codes = {"W": arrays["w"], "S": arrays["s"]}
    models = {"generator": inputs["generator"]}
    if inputs.get("encoder"):
        encoder = load_encoder(inputs["encoder"], device)
        codes["W+ (encoder)"] = encoder_codes(G, encoder, arrays["w"], _render_settings(config))
        models["encoder"] = inputs["encoder"]
    known = {}
    if analysis["renderer_factors"]:
        from sg3pipe.synth.plugins import renderer_factors

        known["renderer"] = renderer_factors(arrays["z"])
    factors = dci_factors(samples, known)
    table = dci_table(codes, factors, analysis["dci_regressor"], jobs=threads)
    title = f"DCI ({analysis['dci_regressor']} importances, {len(samples)} samples)"
    text = f"{title}\n{table.round(3).to_string(index=False)}\n"
    write_analysis(outputs, table, text, title, {"analysis": analysis}, models)


def rotation_control(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Which rows of W+ move the face: rows 0, 1 and 2.. swapped for other latents' rows, and the change of pose
    and identity each gives (``table``, ``text``, and a picture ``grid``).

    Args:
        inputs: ``generator``.
        config: sections ``analysis`` (``rotation_samples``, ``rotation_variants``, ``rotation_seed``),
            ``directions`` (truncation) and ``device``.
    """
    from sg3pipe import load_generator
    from sg3pipe.devices import pick_device
    from sg3pipe.editing.rotation_control import rotation_control as measure
    from sg3pipe.editing.rotation_control import summarize
    from sg3pipe.faces.landmarks import make_detector, make_predictor
    from sg3pipe.metrics.identity import IdentityModel
    from sg3pipe.plots import rotation_control_plot

    analysis = config["analysis"]
    G = load_generator(inputs["generator"], pick_device(config["device"]))
    table, grids = measure(
        G,
        make_detector("hog", upsample=0),
        make_predictor("dlib"),
        IdentityModel(),
        n=analysis["rotation_samples"],
        k=analysis["rotation_variants"],
        seed=analysis["rotation_seed"],
        truncation_psi=config["directions"]["truncation_psi"],
    )
    summary = summarize(table)
    title = (
        "Mean absolute change against the base image (angles in degrees, shifts in image widths; identity: dlib "
        f"cosine similarity) over {analysis['rotation_samples']} bases x {analysis['rotation_variants']} variants"
    )
    text = f"{title}\n{summary.round(4).to_string()}\n"
    write_analysis(outputs, table, text, title, {"analysis": analysis}, {"generator": inputs["generator"]})
    rotation_control_plot(outputs["grid"], grids, summary)


def _render_settings(config: dict):
    """The sampling settings of the renders an analysis scores: direction finding's truncation and alignment."""
    from sg3pipe.editing.sampling import SamplingSettings

    opts = config["directions"]
    return SamplingSettings(truncation_psi=opts["truncation_psi"], pseudo_align=opts["pseudo_align"])


def write_analysis(outputs: dict, table: pd.DataFrame, text: str, title: str, settings: dict, models: dict) -> None:
    """Write an analysis: ``outputs["table"]`` (Parquet, with provenance of ``settings`` and ``models``),
    ``outputs["text"]`` and, when named, ``outputs["html"]`` (the table under ``title``); the text also goes to
    the log."""
    from sg3pipe.io.atomic import atomic_path
    from sg3pipe.io.html import html_table
    from sg3pipe.io.tables import write_frame
    from sg3pipe.provenance import provenance

    log.info("\n%s", text)
    write_frame(outputs["table"], table, {"provenance": provenance(settings, models)})
    with atomic_path(outputs["text"]) as tmp:
        tmp.write_text(text)
    if "html" in outputs:
        html_table(outputs["html"], table, title)
