"""Rule file ``rules/preview.smk``: previews of the configured generator."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def generator_preview(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """A grid of samples (``grid``) and a strip of translations and rotations (``strip``) of ``inputs["generator"]``.

    Args:
        config: sections ``preview`` (``seeds``, ``truncation_psi``, ``strip_steps``) and ``device``.
    """
    from sg3pipe import load_generator
    from sg3pipe.devices import pick_device
    from sg3pipe.pixels import save_png
    from sg3pipe.provenance import provenance
    from sg3pipe.render.preview import sample_grid, transform_strip

    opts = config["preview"]
    device = pick_device(config["device"])
    G = load_generator(inputs["generator"], device=device)
    record = provenance(config={"preview": opts}, models={"generator": inputs["generator"]})
    log.info("rendering previews of %s on %s", inputs["generator"], device)
    save_png(outputs["grid"], sample_grid(G, opts["seeds"], opts["truncation_psi"], device), record)
    save_png(outputs["strip"], transform_strip(G, 0, opts["truncation_psi"], opts["strip_steps"], device), record)
