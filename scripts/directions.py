"""Snakemake adapter of rule `directions`: fit a W boundary (and its conditional twin) and a StyleSpace direction
per scored attribute, list the official boundaries given, and find StyleCLIP global directions when configured."""

import logging

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.direction_finding import DirectionSettings, find_directions
from sg3pipe.editing.sampling import sample_arrays
from sg3pipe.editing.styleclip import StyleClipSettings, load_clip, styleclip_directions
from sg3pipe.io.html import html_table
from sg3pipe.io.tables import read_table
from sg3pipe.scripting import job_logging
from sg3pipe.settings import settings as settings_of

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    opts = snakemake.params.settings
    samples, metadata = read_table(snakemake.input.samples)
    names = ("ratio", "seed", "style_top_k", "conditional")
    settings = DirectionSettings(**{k: opts[k] for k in names})
    record = {**metadata["provenance"], "directions": opts}
    arrays = sample_arrays(samples, metadata)
    styleclip = None
    if opts["styleclip"]:
        device = pick_device(snakemake.params.device)
        clip_settings = settings_of(StyleClipSettings, {**opts["styleclip"], "clip": snakemake.params.clip})
        clip = load_clip(clip_settings.clip, device)  # one clear error when the file or the package is missing
        G = load_generator(snakemake.input.generator, device)
        styleclip = styleclip_directions(G, clip, arrays, clip_settings, opts["pseudo_align"])
    table = find_directions(
        samples, arrays, snakemake.params.outdir, settings, opts["pretrained"], record, styleclip=styleclip
    )
    logging.info("directions:\n%s", table.drop(columns="channels").to_string())
    html_table(snakemake.output.html, table.drop(columns="channels"), "Editing directions")
