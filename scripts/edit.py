"""Snakemake adapter of rule `edit`: one configured edit of a video's latents, and its strip picture."""

from pathlib import Path

import numpy as np

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.edits import EditSpec
from sg3pipe.editing.video_edits import edit_video, edited_images
from sg3pipe.io.tables import read_table
from sg3pipe.provenance import provenance
from sg3pipe.render.preview import save_png, tile, to_uint8
from sg3pipe.scripting import rule_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive
STRIP_FRAMES = 4  # frames down the strip, evenly spaced over the inverted ones

with rule_logging(snakemake.log[0], snakemake.threads, "rule edit"):
    spec = EditSpec(**snakemake.params.spec)
    G = load_generator(snakemake.input.generator, pick_device(snakemake.params.device))
    record = provenance({"edit": snakemake.params.spec}, {"generator": snakemake.input.generator})
    directions = Path(snakemake.input.directions).parent
    metadata = edit_video(snakemake.input.latents, directions, spec, snakemake.output.table, G, record)
    table, _ = read_table(snakemake.output.table)
    inverted = np.flatnonzero(table["inverted"].to_numpy())
    rows = inverted[np.linspace(0, len(inverted) - 1, min(STRIP_FRAMES, len(inverted))).round().astype(int)]
    images = edited_images(G, table, metadata, rows)  # [frames, factors, 3, R, R]
    save_png(snakemake.output.strip, tile(to_uint8(images.flatten(0, 1)), images.shape[1]), record)
