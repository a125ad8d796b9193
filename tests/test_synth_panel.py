"""The reading panel: three readers of other architectures than the shipped classifier, each read held-out
renders as its quality record says, train and resume, fail clearly on unusable files, and no training stage of
the generator or the encoder can reach them."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

import pytest
import torch

from sg3pipe.synth import classifier as classifier_module
from sg3pipe.synth.classifier import classifier_accuracy
from sg3pipe.synth.panel import (
    PANEL,
    ReaderFileError,
    load_panel,
    load_reader,
    make_reader,
    panel_paths,
    panel_summary,
    save_reader,
    train_reader,
)
from sg3pipe.synth.renderer import LABELS
from sg3pipe.training import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = panel_paths(ROOT / "models" / "panel")


def test_the_readers_are_three_architectures_with_their_own_seeds():
    layers = {name: {type(m) for m in make_reader(cfg).modules()} for name, cfg in PANEL.items()}
    assert len(PANEL) >= 3 and len({cfg.seed for cfg in PANEL.values()}) == len(PANEL)
    assert len({frozenset(kinds) for kinds in layers.values()}) == len(PANEL)
    assert torch.nn.TransformerEncoderLayer in layers["convformer"]
    assert torch.nn.Hardswish in layers["separable"] and torch.nn.SiLU in layers["residual"]
    for cfg in PANEL.values():
        net = make_reader(cfg).eval()
        assert net(torch.zeros(2, 3, 64, 64)).shape == (2, len(LABELS))
        assert net(torch.zeros(1, 3, 100, 100)).shape == (1, len(LABELS))  # other sizes are resampled
    with pytest.raises(ValueError, match="unknown reader kind"):
        make_reader(dataclasses.replace(PANEL["residual"], kind="vgg"))


@pytest.mark.parametrize("name", list(PANEL))
def test_shipped_readers_read_renders_as_recorded(name):
    path = SHIPPED[name]
    assert path.stat().st_size <= 2 * 2**20
    net = load_reader(path)
    assert net.names == list(LABELS)
    recorded = json.loads(path.with_suffix("").with_suffix(".quality.json").read_text())
    assert recorded["config"] == dataclasses.asdict(PANEL[name])
    accuracy = classifier_accuracy(net, n=256, seed=7)
    print(name, "accuracy on 256 held-out renders:", accuracy, "recorded on 2,048:", recorded["accuracy"])
    # 256 renders have a standard error of about 2 points at 90%: each attribute within 7 points of its record.
    for attribute in LABELS:
        assert accuracy[attribute] >= recorded["accuracy"][attribute] - 0.07, (attribute, accuracy)


def test_the_shipped_generator_is_read_by_the_panel_as_recorded():
    from sg3pipe import load_generator
    from sg3pipe.synth.generator_training import attribute_accuracies

    G = load_generator(ROOT / "models" / "synth_generator.safetensors")
    record = json.loads((ROOT / "models" / "synth_generator.quality.json").read_text())
    recorded = record["attribute_balanced_accuracy_panel"]["median"]
    median = panel_summary(attribute_accuracies(G, load_panel(SHIPPED), n=256, seed=11))["median"]
    print("the panel's median on 256 seeds:", median, "recorded on 1,024:", recorded)
    # Measured (seed 11, the same with ONEDNN_MAX_CPU_ISA=AVX2): smiling 0.865, glasses 0.866, eyes_closed 0.837,
    # mouth_open 0.917, dark_hair 0.985, long_hair 0.969, each within 3 points of the record on 1,024 seeds; 256
    # seeds have a standard error of about 2.5 points: within 7 of the record. The previous generator, with a
    # panel median 8-15 points lower on the small attributes, would fail.
    for attribute in LABELS:
        assert median[attribute] >= recorded[attribute] - 0.07, (attribute, median)


def test_training_runs_resumes_and_saves(tmp_path, monkeypatch):
    cfg = dataclasses.replace(PANEL["convformer"], steps=4, batch=4, checkpoint_every=2)
    straight = train_reader(tmp_path / "straight", cfg)

    def save_then_stop(*args, **kwargs):  # the job is killed right after its first checkpoint
        save_checkpoint(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(classifier_module, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_reader(tmp_path / "resumed", cfg)
    monkeypatch.undo()
    resumed = train_reader(tmp_path / "resumed", cfg)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    path = save_reader(straight, cfg, tmp_path / "reader.safetensors", {"accuracy": {}})
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(load_panel({"x": path})["x"](images), straight(images))


def test_unusable_files_fail_with_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="synth_panel"):
        load_reader(tmp_path / "missing.safetensors")
    from sg3pipe.synth.classifier import SynthAttributeNet, save_classifier

    other = save_classifier(SynthAttributeNet(list(LABELS)), tmp_path / "classifier.safetensors")
    with pytest.raises(ReaderFileError, match="panel reader"):
        load_reader(other)


def test_panel_summary_gives_min_and_median():
    readings = {"a": {"x": 0.9, "y": 0.5}, "b": {"x": 0.7, "y": 0.6}, "c": {"x": 0.8, "y": 0.1}}
    assert panel_summary(readings) == {"min": {"x": 0.7, "y": 0.1}, "median": {"x": 0.8, "y": 0.5}}


def test_no_training_stage_can_reach_the_panel():
    """The generator's recipe and training, the encoder's training and the classifier never name the panel,
    and the rules that train them take no panel file."""
    from sg3pipe import encoder_training
    from sg3pipe.stages import synth as synth_stages
    from sg3pipe.stages import train_encoder
    from sg3pipe.synth import classifier, generator_recipe, generator_training

    sources = [inspect.getsource(module) for module in
               (encoder_training, classifier, generator_recipe, generator_training, train_encoder)]  # fmt: skip
    sources += [inspect.getsource(synth_stages.synth_models), inspect.getsource(synth_stages.synth_encoder)]
    for source in sources:
        assert "panel" not in source.lower()
    rules = (ROOT / "rules" / "synth.smk").read_text() + (ROOT / "rules" / "train_encoder.smk").read_text()
    for rule in re.split(r"\nrule ", rules)[1:]:
        if not rule.startswith("synth_panel"):
            assert "panel" not in rule, rule.splitlines()[0]


def test_the_rule_builds_every_reader_of_the_panel():
    text = (ROOT / "rules" / "synth.smk").read_text()
    listed = re.search(r"PANEL_READERS = (\[.*?\])", text).group(1)
    assert json.loads(listed) == list(PANEL)
