"""Rule file ``rules/synth.smk``: the synthetic face world's builders: its sample clips, the real-photo sample
clip, its attribute classifier, generator and encoder (:mod:`sg3pipe.synth`)."""

from __future__ import annotations

import dataclasses
import json
import logging

log = logging.getLogger(__name__)


def synth_samples(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Render each clip of ``config["clips"]`` (clip id -> :class:`sg3pipe.synth.clips.ClipSpec` fields, in the
    order of ``outputs["videos"]`` and ``outputs["truths"]``) and its ground truth."""
    from sg3pipe.synth.clips import ClipSpec, write_clip

    specs = config["clips"]
    for clip, video, truth in zip(specs, outputs["videos"], outputs["truths"], strict=True):
        log.info("rendering clip %s", clip)
        write_clip(video, truth, ClipSpec(**specs[clip]))


def astronaut_sample(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """The real-photo sample clip (``outputs["video"]``, with its soundtrack) and its ground truth
    (``outputs["truth"]``): :func:`sg3pipe.synth.photo_clip.make_photo_clip`."""
    from sg3pipe.synth.photo_clip import make_photo_clip

    make_photo_clip(outputs["video"], outputs["truth"])


def synth_classifier(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Train the attribute classifier (resuming in ``config["workdir"]``), measure it on held-out renders (sharp,
    blurred by 0.9 px and noised by 0.05) and write ``outputs["classifier"]`` and ``outputs["quality"]``."""
    from sg3pipe.devices import pick_device
    from sg3pipe.synth.classifier import ClassifierTrainingConfig, save_classifier, train_classifier

    cfg = ClassifierTrainingConfig()
    net = train_classifier(config["workdir"], cfg, pick_device(config["device"])).cpu()
    save_classifier(net, outputs["classifier"], _write_held_out_quality(net, cfg, outputs["quality"]))


def synth_models(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Train the generator by its staged recipe (:mod:`sg3pipe.synth.generator_recipe`, resuming in
    ``config["workdir"]``) against ``inputs["classifier"]``, measure it and write ``outputs["generator"]`` and
    ``outputs["quality"]``."""
    from sg3pipe.devices import pick_device
    from sg3pipe.io.atomic import atomic_path
    from sg3pipe.networks.loading import save_generator
    from sg3pipe.synth.classifier import load_classifier
    from sg3pipe.synth.generator_recipe import train_recipe
    from sg3pipe.synth.generator_training import generator_quality

    device = pick_device(config["device"])
    G = train_recipe(config["workdir"], device=device, classifier=inputs["classifier"]).cpu()
    quality = generator_quality(G, classifier=load_classifier(inputs["classifier"]))
    log.info("quality: %s", quality)
    with atomic_path(outputs["quality"]) as tmp:
        tmp.write_text(json.dumps(quality, indent=2))
    save_generator(G, outputs["generator"])


def synth_encoder(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Train the synthetic world's ReStyle-e4e encoder against ``inputs["generator"]`` on aligned renders with
    :class:`sg3pipe.encoder_training.EncoderTrainingConfig`'s defaults (the shipped model's), no LPIPS and no
    identity loss; write ``outputs["encoder"]`` and ``outputs["quality"]``."""
    from sg3pipe.networks.loading import load_generator
    from sg3pipe.stages.train_encoder import fit_encoder
    from sg3pipe.synth.plugins import synthetic_source

    G = load_generator(inputs["generator"])
    fit_encoder(G, synthetic_source(G), outputs, {}, {"weights": None, "net": "alex"}, None, config)


def synth_panel(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Train the panel reader ``config["reader"]`` (a key of :data:`sg3pipe.synth.panel.PANEL`, resuming in
    ``config["workdir"]``), measure it on held-out renders (sharp, blurred by 0.9 px, noised by 0.05) and write
    ``outputs["reader"]`` and ``outputs["quality"]``."""
    from sg3pipe.devices import pick_device
    from sg3pipe.synth.panel import PANEL, save_reader, train_reader

    cfg = PANEL[config["reader"]]
    net = train_reader(config["workdir"], cfg, pick_device(config["device"])).cpu()
    save_reader(net, cfg, outputs["reader"], _write_held_out_quality(net, cfg, outputs["quality"]))


def _write_held_out_quality(net, cfg, path: str) -> dict:
    """The accuracy per attribute of an attribute classifier ``net`` (trained with the dataclass ``cfg``) on
    2,048 held-out renders, sharp, blurred by 0.9 px and noised by 0.05, with ``cfg``: written as JSON to
    ``path`` and returned."""
    from sg3pipe.io.atomic import atomic_path
    from sg3pipe.synth.classifier import classifier_accuracy

    quality = {
        "accuracy": classifier_accuracy(net),
        "accuracy_blurred_0.9px": classifier_accuracy(net, blur_px=0.9),
        "accuracy_noised_0.05": classifier_accuracy(net, noise_std=0.05),
        "n": 2048,
        "transforms": "training distribution",
        "config": dataclasses.asdict(cfg),
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(quality, indent=2))
    return quality
