"""Snakemake adapter of rule `synth_models`: train the synthetic generator by its staged recipe, measure it and
export it."""

import json
import logging

from sg3pipe.devices import pick_device
from sg3pipe.io.atomic import atomic_path
from sg3pipe.networks.loading import save_generator
from sg3pipe.scripting import job_logging
from sg3pipe.synth.classifier import load_classifier
from sg3pipe.synth.generator_recipe import train_recipe
from sg3pipe.synth.generator_training import generator_quality

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    G = train_recipe(snakemake.params.workdir, device=device, classifier=snakemake.input.classifier).cpu()
    quality = generator_quality(G, classifier=load_classifier(snakemake.input.classifier))
    logging.info("quality: %s", quality)
    with atomic_path(snakemake.output.quality) as tmp:
        tmp.write_text(json.dumps(quality, indent=2))
    save_generator(G, snakemake.output.generator)
