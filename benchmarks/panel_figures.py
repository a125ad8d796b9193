"""The synthetic world's editing figures read by the panel (sg3pipe.synth.panel: readers that no training stage
uses), beside the same figures read by the shipped classifier, which found the directions.

Run after the main job (it reads the directions folder and its samples):

* the generator's legibility: balanced accuracy with which each reader reads the attributes of
  ``face_params(z)`` from the generator's images (1,024 fresh seeds, as models/synth_generator.quality.json);
* the flip table, all three blocks (fitted W, conditional W, fitted StyleSpace): each reader chooses the side of
  each held-out sample and reads whether the edit changed its decision, as the workflow's flip table does with
  its scorer (the same seeds and factor);
* the flip table's floors on the renderer itself (sg3pipe.synth.flip_floors: one attribute's parameter mirrored
  across its threshold on 2,048 renders): how often each reader's decision on another attribute changes where
  only that parameter did; a cell at or under its floor is the reader's confusion, not the generator's;
* DCI of W and S against each reader's scores (logits) on the direction-finding samples (as the workflow's DCI
  table against the shipped classifier's scores).

Prints each reader's figures, then the panel's minimum and median of each, and writes them all as JSON.
What it measured: docs/results.md.

    python benchmarks/panel_figures.py
    python benchmarks/panel_figures.py --flip-samples 256 --out results/analysis/panel_figures.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from sg3pipe import load_generator
from sg3pipe.editing.dci_table import dci_table
from sg3pipe.editing.flips import describe_flips, flip_tables_by_readers
from sg3pipe.editing.sampling import SamplingSettings, render_for_scoring, sample_arrays
from sg3pipe.io.tables import read_table
from sg3pipe.synth.classifier import load_classifier
from sg3pipe.synth.flip_floors import renderer_flips
from sg3pipe.synth.generator_training import attribute_accuracies
from sg3pipe.synth.panel import load_panel, panel_paths, panel_summary
from sg3pipe.synth.plugins import SynthScorer

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "shipped classifier"


def flip_summary(table: pd.DataFrame) -> dict:
    """Per block (space/source) and reader: the lowest own-attribute flip share over the directions and the
    highest other-attribute share, with the direction and attribute of the latter."""
    out = {}
    attributes = [c for c in table.columns if c not in ("space", "source", "direction", "reader")]
    for (space, source, reader), part in table.groupby(["space", "source", "reader"], sort=False):
        values = part.set_index("direction")[attributes]
        own = {d: float(values.loc[d, d]) for d in values.index}
        others = [(float(values.loc[d, a]), d, a) for d in values.index for a in attributes if a != d]
        worst = max(others)
        out.setdefault(f"{space} {source}", {})[reader] = {
            "own": own,
            "own_min": min(own.values()),
            "other_max": worst[0],
            "other_max_cell": f"{worst[1]} -> {worst[2]}",
        }
    return out


def other_cells(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The panel's median of each off-diagonal cell: ``tables`` reader -> ``[direction, attribute]`` shares gives
    one row per cell (``direction``, ``attribute``, ``median``), largest first."""
    stacked = np.stack([t.to_numpy(dtype=np.float64) for t in tables.values()])  # [R, D, A]
    median = pd.DataFrame(np.median(stacked, axis=0), index=next(iter(tables.values())).index,
                          columns=next(iter(tables.values())).columns)  # fmt: skip
    cells = median.stack().rename("median").reset_index()
    cells.columns = ["direction", "attribute", "median"]
    return cells[cells["direction"] != cells["attribute"]].sort_values("median", ascending=False)


def dci_by_reader(G, readers: dict, samples: Path, n: int, settings: SamplingSettings) -> pd.DataFrame:
    """DCI of W and S against each reader's scores (logits, as the workflow's ``scores`` factors)."""
    table, metadata = read_table(samples)
    arrays = sample_arrays(table.iloc[:n], metadata)
    ws = G.mapping(torch.from_numpy(arrays["z"]), truncation_psi=settings.truncation_psi)
    factors = {}
    with torch.no_grad():
        images = torch.cat([render_for_scoring(G, ws[k : k + 64], settings.pseudo_align)
                            for k in range(0, len(ws), 64)])  # fmt: skip
        for name, net in readers.items():
            factors[name] = torch.cat([net(images[k : k + 256]) for k in range(0, len(images), 256)]).double().numpy()
    return dci_table({"W": arrays["w"], "S": arrays["s"]}, factors, "lasso", jobs=os.cpu_count() or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="models/synth_generator.safetensors")
    parser.add_argument("--classifier", default="models/synth_classifier.safetensors")
    parser.add_argument("--panel", default="models/panel", help="folder of the panel's reader files")
    parser.add_argument("--directions", default="results/directions/synth_generator")
    parser.add_argument("--flip-samples", type=int, default=256)
    parser.add_argument("--dci-samples", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("results/analysis/panel_figures.json"))
    args = parser.parse_args()
    print("command:", shlex.join(["python", os.path.relpath(__file__, ROOT), *sys.argv[1:]]), flush=True)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    settings = SamplingSettings(config["directions"]["truncation_psi"], config["directions"]["pseudo_align"])
    factor = config["analysis"]["flip_factor"]
    torch.manual_seed(0)
    G = load_generator(args.generator)
    panel = load_panel(panel_paths(args.panel))
    readers = {SHIPPED: load_classifier(args.classifier), **panel}

    figures = {"legibility": attribute_accuracies(G, readers)}
    figures["legibility_panel"] = panel_summary({k: v for k, v in figures["legibility"].items() if k in panel})
    print("\nlegibility (balanced accuracy, 1,024 seeds)")
    print(pd.DataFrame(figures["legibility"]).T.round(3).to_string())
    print(pd.DataFrame(figures["legibility_panel"]).T.round(3).to_string())

    directions = Path(args.directions)
    scorers = {name: SynthScorer(net) for name, net in readers.items()}  # the edits rendered once for all
    table = flip_tables_by_readers(G, scorers, directions, factor, args.flip_samples, settings)
    for reader, part in table.groupby("reader", sort=False):
        print(f"\nread by {reader}:\n" + describe_flips(part.drop(columns="reader"), factor, args.flip_samples))
    summary = flip_summary(table)
    figures["flips"] = summary
    figures["flips_panel"] = {}
    attributes = list(readers[SHIPPED].names)
    for block, by_reader in summary.items():
        own = panel_summary({r: by_reader[r]["own"] for r in panel})
        worst = [by_reader[r]["other_max"] for r in panel]
        figures["flips_panel"][block] = {
            "own_min": own["min"],
            "own_median": own["median"],
            "other_max_median": float(np.median(worst)),
            "other_max_max": max(worst),
        }
        print(f"\n{block}: own-attribute flips, panel min / median: "
              + ", ".join(f"{a} {own['min'][a]:.0%}/{own['median'][a]:.0%}" for a in attributes if a in own["min"])
              + f"; worst other attribute, panel median {np.median(worst):.1%}, max {max(worst):.1%}")  # fmt: skip

    floors = {name: renderer_flips(scorers[name]) for name in panel}
    floor_cells = other_cells(floors).set_index(["direction", "attribute"])["median"]
    figures["renderer_floors"] = {name: floor.to_dict(orient="index") for name, floor in floors.items()}
    for name, floor in floors.items():
        print(f"\nrenderer floors read by {name} (rows: the parameter mirrored; columns: the decision that changed)")
        print(floor.round(3).to_string())
    figures["other_cells_panel"] = {}
    for (space, source), part in table.groupby(["space", "source"], sort=False):
        tables = {r: t.set_index("direction")[attributes] for r, t in part.groupby("reader") if r in panel}
        cells = other_cells(tables).head(4)
        cells = cells.join(floor_cells.rename("renderer_floor"), on=["direction", "attribute"])
        figures["other_cells_panel"][f"{space} {source}"] = cells.to_dict(orient="records")
        print(f"\n{space} {source}: largest other-attribute cells by the panel's median, beside their renderer floors")
        print(cells.round(3).to_string(index=False))

    dci = dci_by_reader(G, readers, directions / "samples.parquet", args.dci_samples, settings)
    figures["dci"] = dci.to_dict(orient="records")
    print("\nDCI against each reader's scores (lasso)\n" + dci.round(3).to_string(index=False))
    panel_dci = dci[dci["factors"].isin(list(panel))].groupby("space")[
        ["disentanglement", "completeness", "informativeness"]
    ]
    figures["dci_panel"] = {"min": panel_dci.min().to_dict(), "median": panel_dci.median().to_dict()}
    print(
        "panel min\n"
        + panel_dci.min().round(3).to_string()
        + "\npanel median\n"
        + panel_dci.median().round(3).to_string()
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"flip_factor": factor, "flip_samples": args.flip_samples, **figures}, indent=1))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
