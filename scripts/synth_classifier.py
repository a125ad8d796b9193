"""Snakemake adapter of rule `synth_classifier`: train, evaluate and export the synthetic attribute classifier."""

import dataclasses
import json

from sg3pipe.devices import pick_device
from sg3pipe.io.atomic import atomic_path
from sg3pipe.scripting import job_logging
from sg3pipe.synth.classifier import ClassifierTrainingConfig, classifier_accuracy, save_classifier, train_classifier

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    cfg = ClassifierTrainingConfig()
    net = train_classifier(snakemake.params.workdir, cfg, pick_device(snakemake.params.device))
    net = net.cpu()
    quality = {
        "accuracy": classifier_accuracy(net),
        # Robustness: the same renders, every one blurred by 0.9 px or noised by 0.05 (sg3pipe.synth.classifier.degrade)
        "accuracy_blurred_0.9px": classifier_accuracy(net, blur_px=0.9),
        "accuracy_noised_0.05": classifier_accuracy(net, noise_std=0.05),
        "n": 2048,
        "transforms": "training distribution",
        "config": dataclasses.asdict(cfg),
    }
    with atomic_path(snakemake.output.quality) as tmp:
        tmp.write_text(json.dumps(quality, indent=2))
    save_classifier(net, snakemake.output.classifier, quality)
