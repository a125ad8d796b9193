"""Rule file ``rules/train_encoder.smk``: train a ReStyle encoder against the configured generator."""

from __future__ import annotations

import dataclasses
import json
import logging

log = logging.getLogger(__name__)


def train_encoder(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None:
    """Train, evaluate and export a ReStyle encoder on the manifest's aligned frames.

    Args:
        inputs: ``generator``, ``aligned`` (every video's aligned.mkv) and ``tables`` (their frames.parquet).
        outputs: ``encoder`` (sg3pipe .safetensors), ``quality`` (JSON: reconstruction quality and the settings).
        config: sections ``train_encoder`` (:class:`sg3pipe.encoder_training.EncoderTrainingConfig` keys),
            ``encode`` (its ``lpips_weights``, ``lpips_net``), ``arcface`` (models.arcface, or None) and
            ``device``, and ``workdir`` (checkpoints; training resumes there).
    """
    from sg3pipe.encoder_training import aligned_video_source
    from sg3pipe.networks.loading import load_generator

    source = aligned_video_source(inputs["aligned"], inputs["tables"])
    lpips = {"weights": config["encode"]["lpips_weights"], "net": config["encode"]["lpips_net"]}
    G = load_generator(inputs["generator"])
    fit_encoder(G, source, outputs, config["train_encoder"], lpips, config["arcface"], config)


def fit_encoder(G, source, outputs: dict, training: dict, lpips: dict, arcface, config: dict) -> None:
    """Train an encoder for the generator ``G`` on ``source`` (:mod:`sg3pipe.encoder_training`) with the settings
    ``training``, LPIPS (``lpips["weights"]``, or None) and the ArcFace identity loss (``arcface`` weights, or
    None), in ``config["workdir"]`` on ``config["device"]``; write ``outputs["encoder"]`` and
    ``outputs["quality"]``."""
    from sg3pipe.devices import pick_device
    from sg3pipe.encoder_training import EncoderTrainingConfig, encoder_quality
    from sg3pipe.encoder_training import train_encoder as train
    from sg3pipe.io.atomic import atomic_path
    from sg3pipe.networks.restyle import save_encoder
    from sg3pipe.settings import settings

    device = pick_device(config["device"])
    cfg = settings(EncoderTrainingConfig, training)
    lpips_net = None
    if lpips["weights"] and cfg.lpips_lambda > 0:
        from sg3pipe.metrics.lpips_loader import load_lpips

        lpips_net = load_lpips(lpips["weights"], lpips["net"], device)
    identity = None
    if arcface and cfg.id_lambda > 0:
        from sg3pipe.metrics.arcface import load_identity_loss

        identity = load_identity_loss(arcface, device)
    enc = train(config["workdir"], G.to(device), source, cfg, lpips=lpips_net, identity=identity, device=device)
    quality = {**encoder_quality(enc, source, n_iters=cfg.n_iters), "config": dataclasses.asdict(cfg)}
    log.info("quality: %s", quality)
    with atomic_path(outputs["quality"]) as tmp:
        tmp.write_text(json.dumps(quality, indent=2))
    save_encoder(enc.cpu(), outputs["encoder"])
