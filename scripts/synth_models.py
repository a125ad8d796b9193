"""Snakemake adapter of rule `synth_models`: train, evaluate and export the synthetic generator."""

import json
import logging

from sg3pipe.devices import pick_device
from sg3pipe.io.atomic import atomic_path
from sg3pipe.networks.loading import save_generator
from sg3pipe.scripting import job_logging
from sg3pipe.synth.generator_training import GeneratorTrainingConfig, generator_quality, train_generator

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    G = train_generator(snakemake.params.workdir, GeneratorTrainingConfig(), device)
    quality = generator_quality(G.cpu())
    logging.info("quality: %s", quality)
    with atomic_path(snakemake.output.quality) as tmp:
        tmp.write_text(json.dumps(quality, indent=2))
    save_generator(G, snakemake.output.generator)
