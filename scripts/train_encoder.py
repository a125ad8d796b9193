"""Snakemake adapter of rules `synth_encoder` and `train_encoder`: train, evaluate and export a ReStyle encoder."""

import dataclasses
import json
import logging

from sg3pipe.devices import pick_device
from sg3pipe.encoder_training import (
    EncoderTrainingConfig,
    aligned_video_source,
    encoder_quality,
    synthetic_source,
    train_encoder,
)
from sg3pipe.io.atomic import atomic_path
from sg3pipe.networks.loading import load_generator
from sg3pipe.networks.restyle import save_encoder
from sg3pipe.scripting import job_logging
from sg3pipe.settings import settings

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    device = pick_device(snakemake.params.device)
    G = load_generator(snakemake.input.generator)
    if snakemake.params.source == "synthetic":
        source = synthetic_source(G)
    else:
        source = aligned_video_source(snakemake.input.aligned, snakemake.input.tables)
    cfg = settings(EncoderTrainingConfig, snakemake.params.training)
    lpips = None
    if snakemake.params.lpips_weights and cfg.lpips_lambda > 0:
        from sg3pipe.metrics.lpips_loader import load_lpips

        lpips = load_lpips(snakemake.params.lpips_weights, snakemake.params.lpips_net, device)
    identity = None
    if snakemake.params.identity_weights and cfg.id_lambda > 0:
        from sg3pipe.metrics.arcface import load_identity_loss

        identity = load_identity_loss(snakemake.params.identity_weights, device)
    enc = train_encoder(
        snakemake.params.workdir, G.to(device), source, cfg, lpips=lpips, identity=identity, device=device
    )
    quality = {**encoder_quality(enc, source, n_iters=cfg.n_iters), "config": dataclasses.asdict(cfg)}
    logging.info("quality: %s", quality)
    with atomic_path(snakemake.output.quality) as tmp:
        tmp.write_text(json.dumps(quality, indent=2))
    save_encoder(enc.cpu(), snakemake.output.encoder)
