"""Two floors for the flip table: how often an attribute's decision changes when nothing that should change it
does.

1. **Random directions.** One random W direction per attribute, orthogonal to all the fitted normals, moved like
   the flip table's rows (``--factor`` std along it, towards the other side of that attribute). The rate at
   which any decision changes is what the generator and classifier do under an edit that carries no attribute.
2. **The renderer itself.** Each attribute's parameter alone mirrored across its threshold on ``--renders``
   renders (``LABELS``): the classifier's decision on the others should not change, and the table says how often
   it does. ``--panel`` reads the same renders with each reader of the panel (sg3pipe.synth.panel) too.

Needs a directions folder from the workflow (``results/directions/synth_generator``: its ``samples.parquet``).
What it measured: docs/findings.md.

    python experiments/flip_floors.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

import sg3pipe.synth  # noqa: F401 - registers the scorer kind `synthetic`
from sg3pipe import load_generator
from sg3pipe.editing.classifiers import load_scorer
from sg3pipe.editing.directions import conditional_normal, fit_boundary, projection_std
from sg3pipe.editing.flips import flip_table
from sg3pipe.editing.sampling import SamplingSettings
from sg3pipe.io.tables import read_table
from sg3pipe.synth.flip_floors import renderer_flips
from sg3pipe.synth.panel import load_panel, panel_paths
from sg3pipe.synth.plugins import SynthScorer

ROOT = Path(__file__).resolve().parents[1]


def random_direction_flips(G, scorer, samples: pd.DataFrame, ratio: float, factor: float, n: int) -> pd.DataFrame:
    """Flip table of one random unit direction per attribute, orthogonal to every fitted normal."""
    w = np.stack(samples["w"].to_numpy()).astype(np.float64)
    normals = np.concatenate(
        [fit_boundary(w, samples[f"score_{name}"].to_numpy(np.float64), ratio).normal for name in scorer.names]
    )
    rng = np.random.default_rng(0)
    directions = {}
    for name in scorer.names:
        direction = conditional_normal(rng.standard_normal((1, w.shape[1])), normals)
        directions[name] = ("w", direction, projection_std(w, direction))
    return flip_table(G, scorer, directions, factor, n, SamplingSettings(truncation_psi=0.7, pseudo_align=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directions", type=Path, default=ROOT / "results" / "directions" / "synth_generator")
    parser.add_argument("--generator", default=ROOT / "models" / "synth_generator.safetensors")
    parser.add_argument("--classifier", default=ROOT / "models" / "synth_classifier.safetensors")
    parser.add_argument("--ratio", type=float, default=0.3, help="directions.ratio of the fitted normals")
    parser.add_argument("--factor", type=float, default=3.0)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--renders", type=int, default=2048)
    parser.add_argument("--panel", type=Path, help="folder of the panel's readers: their renderer floors too")
    args = parser.parse_args()
    G = load_generator(args.generator)
    scorer = load_scorer({"kind": "synthetic", "path": str(args.classifier)})
    samples, _ = read_table(args.directions / "samples.parquet")
    print(f"random directions, {args.factor:g} std, {args.samples} held-out samples (rows: whose side sets signs)")
    print(random_direction_flips(G, scorer, samples, args.ratio, args.factor, args.samples).round(3))
    print(f"\nrenderer, one parameter mirrored across its threshold, {args.renders} renders")
    print(renderer_flips(scorer, args.renders).round(3))
    for name, net in (load_panel(panel_paths(args.panel)) if args.panel else {}).items():
        print(f"\nthe same renders read by the panel's {name} reader")
        print(renderer_flips(SynthScorer(net), args.renders).round(3))


if __name__ == "__main__":
    main()
