"""Snakemake adapter of rule `edit`: every configured edit of a video's latents, and a strip picture of each."""

from pathlib import Path

import numpy as np

from sg3pipe import load_generator
from sg3pipe.devices import pick_device
from sg3pipe.editing.edits import EditSpec
from sg3pipe.editing.video_edits import edit_table_path, edit_video, edited_images
from sg3pipe.io.tables import read_table
from sg3pipe.provenance import provenance
from sg3pipe.render.preview import save_png, tile, to_uint8
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive
STRIP_FRAMES = 4  # frames down the strip, evenly spaced over the inverted ones

with job_logging(snakemake):
    G = load_generator(snakemake.input.generator, pick_device(snakemake.params.device))
    directions = Path(snakemake.input.directions).parent
    out_dir = Path(snakemake.output.edits)
    out_dir.mkdir(parents=True, exist_ok=True)
    for spec_config in snakemake.params.specs:
        spec = EditSpec(**spec_config)
        table_path = edit_table_path(out_dir, spec.name)
        strip_path = table_path.with_suffix(".png")
        record = provenance({"edit": spec_config}, {"generator": snakemake.input.generator})
        metadata = edit_video(snakemake.input.latents, directions, spec, table_path, G, record)
        table, _ = read_table(table_path)
        inverted = np.flatnonzero(table["inverted"].to_numpy())
        rows = inverted[np.linspace(0, len(inverted) - 1, min(STRIP_FRAMES, len(inverted))).round().astype(int)]
        images = edited_images(G, table, metadata, rows)  # [frames, factors, 3, R, R]
        save_png(strip_path, tile(to_uint8(images.flatten(0, 1)), images.shape[1]), record)
