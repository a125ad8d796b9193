"""The flip table's floor on the renderer itself (sg3pipe.synth.flip_floors), read by the shipped models.

Thresholds come from 256 renders at seed 7 (the same under ONEDNN_MAX_CPU_ISA=AVX2): the shipped classifier
follows each mirrored label for 97.3-99.6% of them and changes another decision for at most 1.6%; the panel's
convformer changes its smiling decision for 40.6% where only the mouth opened (the separable reader 19.5%, the
residual 7.4%).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sg3pipe.synth.classifier import load_classifier
from sg3pipe.synth.flip_floors import renderer_flips
from sg3pipe.synth.panel import load_panel, panel_paths
from sg3pipe.synth.plugins import SynthScorer
from sg3pipe.synth.renderer import LABELS

MODELS = Path(__file__).resolve().parents[1] / "models"


def test_the_shipped_classifier_follows_each_mirrored_label_and_no_other():
    floors = renderer_flips(SynthScorer(load_classifier(MODELS / "synth_classifier.safetensors")), n=256, seed=7)
    assert list(floors.index) == list(LABELS) and list(floors.columns) == list(LABELS)
    values = floors.to_numpy()
    assert np.diag(values).min() > 0.9
    assert values[~np.eye(len(LABELS), dtype=bool)].max() < 0.06


def test_the_panels_smile_readers_see_an_open_mouth_as_a_smile_on_the_renderer():
    """The floor behind the flip table's mouth_open -> smiling cell (docs/results.md): a generator's mouth_open
    edit cannot read cleaner than the renderer's own open mouths."""
    readers = load_panel(panel_paths(MODELS / "panel"))
    cell = {name: renderer_flips(SynthScorer(net), n=256, seed=7).loc["mouth_open", "smiling"]
            for name, net in readers.items()}  # fmt: skip
    assert cell["convformer"] > 0.3
    assert 0.12 < cell["separable"] < 0.3
    assert cell["residual"] < 0.12
