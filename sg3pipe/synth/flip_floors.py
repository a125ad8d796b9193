"""The flip table's floor on the renderer itself: how often a scorer's decision on one attribute changes when only
another attribute's parameter changes. Edits of a generator cannot be cleaner than this for that scorer, so a
flip-table cell at or under its floor is the scorer's confusion, not the generator's cross-talk."""

from __future__ import annotations

import pandas as pd
import torch

from sg3pipe.editing.classifiers import AttributeScorer
from sg3pipe.synth.params import LATENT_PARAMS, column, sample_params, with_values
from sg3pipe.synth.renderer import LABELS, render


def renderer_flips(scorer: AttributeScorer, n: int = 2048, seed: int = 12345, batch: int = 128) -> pd.DataFrame:
    """Each attribute's renderer parameter alone mirrored across its threshold (:data:`LABELS`) on ``n`` random
    64-px renders (``sample_params(n, seed)``), read by ``scorer`` (scores in [0, 1], decision at 0.5).

    Returns:
        ``[len(LABELS), len(scorer.names)]`` shares in [0, 1]; row: the attribute whose parameter was mirrored,
        column: the attribute whose decision changed. The diagonal is how often the scorer follows the label it
        should; off the diagonal, its floor for the flip table's cell.
    """
    ranges = {p.name: (p.low, p.high) for p in LATENT_PARAMS}
    params = sample_params(n, seed)

    def decisions(p: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([scorer(render(p[i : i + batch], 64).images) > 0.5 for i in range(0, n, batch)])

    before = decisions(params)
    table = {}
    for attribute, (name, threshold, _) in LABELS.items():
        mirrored = (2 * threshold - column(params, name)).clamp(*ranges[name])
        table[attribute] = (decisions(with_values(params, **{name: mirrored})) != before).float().mean(0).numpy()
    return pd.DataFrame.from_dict(table, orient="index", columns=scorer.names)
