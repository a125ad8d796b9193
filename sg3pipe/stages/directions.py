"""Rule file ``rules/directions.smk``: editing directions of the configured generator, scored by the configured
attribute scorer (``sg3pipe.editing``)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

SAMPLING_KEYS = ("seed", "truncation_psi", "pseudo_align", "chunk", "batch")  # directions.* that sampling takes
FITTING_KEYS = ("ratio", "seed", "style_top_k", "conditional")  # directions.* that fitting takes


def direction_samples(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Sample, render and score ``directions.samples`` latents in resumable chunks, then join them.

    Args:
        inputs: ``generator``, ``scorer`` (the scorer's file).
        outputs: ``samples`` (samples.parquet).
        config: sections ``directions``, ``scorer`` (models.scorer, path resolved) and ``device``, and
            ``workdir`` (the chunk folder, kept across interruptions).
    """
    from sg3pipe import load_generator
    from sg3pipe.devices import pick_device
    from sg3pipe.editing.classifiers import load_scorer
    from sg3pipe.editing.sampling import SamplingSettings, join_chunks, sample_to_chunks
    from sg3pipe.provenance import provenance
    from sg3pipe.stages import scorer_kinds_registered

    device = pick_device(config["device"])
    opts = config["directions"]
    settings = SamplingSettings(n=opts["samples"], **{key: opts[key] for key in SAMPLING_KEYS})
    G = load_generator(inputs["generator"], device)
    scorer_kinds_registered()
    scorer = load_scorer(config["scorer"], device)
    record = provenance({"directions": opts}, {"generator": inputs["generator"], "scorer": inputs["scorer"]})
    join_chunks(sample_to_chunks(G, scorer, config["workdir"], settings, record), outputs["samples"])


def directions(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Fit a W boundary (and its conditional twin) and a StyleSpace direction per scored attribute, list the
    official boundaries of ``directions.pretrained``, and find StyleCLIP global directions when
    ``directions.styleclip`` is set; the files go beside ``outputs["table"]``.

    Args:
        inputs: ``samples`` (samples.parquet), ``generator`` (renders StyleCLIP's channel moves).
        outputs: ``table`` (directions.parquet), ``html``.
        config: sections ``directions`` and ``device``, and ``clip`` (the CLIP weights' resolved path, or None).
    """
    from sg3pipe import load_generator
    from sg3pipe.devices import pick_device
    from sg3pipe.editing.direction_finding import DirectionSettings, find_directions
    from sg3pipe.editing.sampling import sample_arrays
    from sg3pipe.editing.styleclip import StyleClipSettings, load_clip, styleclip_directions
    from sg3pipe.io.html import html_table
    from sg3pipe.io.tables import read_table
    from sg3pipe.settings import settings as settings_of

    opts = config["directions"]
    samples, metadata = read_table(inputs["samples"])
    settings = DirectionSettings(**{key: opts[key] for key in FITTING_KEYS})
    record = {**metadata["provenance"], "directions": opts}
    arrays = sample_arrays(samples, metadata)
    styleclip = None
    if opts["styleclip"]:
        device = pick_device(config["device"])
        clip_settings = settings_of(StyleClipSettings, {**opts["styleclip"], "clip": config["clip"]})
        clip = load_clip(clip_settings.clip, device)  # one clear error when the file or the package is missing
        G = load_generator(inputs["generator"], device)
        styleclip = styleclip_directions(G, clip, arrays, clip_settings, opts["pseudo_align"])
    out_dir = Path(outputs["table"]).parent
    table = find_directions(samples, arrays, out_dir, settings, opts["pretrained"], record, styleclip=styleclip)
    log.info("directions:\n%s", table.drop(columns="channels").to_string())
    html_table(outputs["html"], table.drop(columns="channels"), "Editing directions")
