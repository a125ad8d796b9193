"""Train a ReStyle encoder (pSp or e4e variant) against a frozen generator on aligned images.

The recipe of ReStyle (Alaluf et al. 2021) and its e4e variant (Tov et al. 2021), sized for a CPU:

* every micro-batch runs ``n_iters`` encoder passes, starting from ``latent_avg`` and the average image; each
  pass's latent ``w_t = w_{t-1}.detach() + E(x, y_{t-1})`` is rendered, ``y_t = G(w_t)``, and its loss is
  back-propagated (through the frozen generator into the encoder), with ``y_t`` detached as the next input;
* losses: ``l2`` MSE(y_t, x), ``lpips`` (when a LPIPS model is given; the backbone comes from a configured
  file), ``id`` (when an identity loss is given: ArcFace IR-SE50 from a configured file,
  sg3pipe.metrics.arcface), ``latent`` MSE(w_t, w_true) (only for sources that know the true latents, such
  as the synthetic world: it speeds up training on a CPU several times), and for e4e the delta regulariser
  (the L2 norm of each row's offset from row 0, ``delta_norm``) and the latent discriminator's
  non-saturating loss ``w_adv``;
* the e4e latent discriminator (``LatentDiscriminator``: an MLP over single W vectors) learns to tell
  ``G.mapping(z)`` from the encoder's rows, with an R1 penalty on the real ones;
* gradient accumulation: ``batch`` images per micro-batch, ``accumulate`` micro-batches per optimiser step
  (the paper's effective batch 8 from 2);
* seeded, and resumable from ``checkpoint.pt``; writes ``losses.json``, ``loss.png`` and ``validation.png``
  (targets and the reconstruction of every iteration).

The ArcFace weights are not shipped, so the synthetic world's encoder is trained without the identity loss.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sg3pipe.io.atomic import atomic_path
from sg3pipe.networks.encoders import BackboneEncoder
from sg3pipe.networks.restyle import ReStyleEncoder, load_encoder
from sg3pipe.networks.stylegan3 import FullyConnectedLayer, Generator
from sg3pipe.training import cosine_lr, resume, save_checkpoint

log = logging.getLogger(__name__)

# A source of training images: (n, rng) -> (aligned images [n, 3, R, R] in [-1, 1], true W+ latents
# [n, num_ws, w_dim] or None when unknown).
ImageSource = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor | None]]

VARIANTS = ("e4e", "psp")


@dataclass
class EncoderTrainingConfig:
    """Architecture, losses and optimisation of an encoder (defaults: the synthetic world's shipped encoder)."""

    variant: str = "e4e"  # e4e: ProgressiveBackboneEncoder (w0 + deltas) | psp: BackboneEncoder (a row per head)
    backbone: str = "ir_se"  # ir_se | resnet
    input_size: int = 64  # images and reconstructions are pooled to this side (pixels)
    stage_units: tuple[int, ...] = (1, 1, 2, 1, 1)  # residual units per stage (each stage halves the side)
    stage_widths: tuple[int, ...] = (16, 32, 64, 64, 64)  # channels per stage
    n_iters: int = 3  # ReStyle passes per training image (and at evaluation)
    steps: int = 900  # optimiser steps
    batch: int = 2  # images per micro-batch
    accumulate: int = 4  # micro-batches per optimiser step (effective batch = batch * accumulate)
    lr: float = 1e-3  # Adam, cosine-decayed to lr / 20
    l2_lambda: float = 1.0
    lpips_lambda: float = 0.8  # used only when train_encoder gets a LPIPS model
    id_lambda: float = 0.1  # used only when train_encoder gets an identity loss (official ReStyle: 0.1)
    latent_lambda: float = 1.0  # used only when the source knows the true latents
    delta_norm_lambda: float = 2e-4  # e4e only
    w_adv_lambda: float = 0.1  # e4e only; 0 turns the latent discriminator off
    d_lr: float = 2e-5  # latent discriminator's Adam learning rate (official e4e)
    r1_gamma: float = 10.0  # R1 penalty weight on real latents
    seed: int = 0
    checkpoint_every: int = 25  # optimiser steps between checkpoints
    init_from: str | None = None  # an encoder file whose encoder weights training starts from (fine-tuning)
    extra: dict = field(default_factory=dict)  # free-form notes stored with the model

    def encoder_kwargs(self, G: Generator) -> dict:
        """:class:`BackboneEncoder` arguments for a generator ``G``."""
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        return dict(
            backbone=self.backbone,
            progressive=self.variant == "e4e",
            w_dim=G.w_dim,
            n_styles=G.num_ws,
            input_nc=2 * G.img_channels,
            input_size=self.input_size,
            stage_units=list(self.stage_units),
            stage_widths=list(self.stage_widths),
        )


class LatentDiscriminator(nn.Module):
    """e4e's latent discriminator: ``[N, w_dim]`` W vectors -> ``[N]`` logits ("is it from the mapping?").
    Four equalised-lr linear layers with leaky ReLU 0.2 (the official ``LatentCodesDiscriminator``)."""

    def __init__(self, w_dim: int, layers: int = 4):
        super().__init__()
        dims = [w_dim] * layers + [1]
        self.layers = nn.ModuleList(
            FullyConnectedLayer(a, b, activation="lrelu" if i < layers - 1 else "linear")
            for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True))
        )

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            w = layer(w)
        return w[:, 0]


def aligned_video_source(videos: list[str | os.PathLike], tables: list[str | os.PathLike]) -> ImageSource:
    """Frames of aligned videos (``aligned.mkv`` of rule frames) whose ``frames.parquet`` status is usable,
    held in memory as uint8; latents unknown."""
    from sg3pipe.frames import USABLE
    from sg3pipe.io.tables import read_table
    from sg3pipe.pixels import to_tensor
    from sg3pipe.video.decode import read_all_frames

    kept = []
    for video, table in zip(videos, tables, strict=True):
        usable = read_table(table)[0]["status"].isin(USABLE).to_numpy()
        frames = read_all_frames(video)
        if len(frames) != len(usable):
            raise ValueError(f"{video} has {len(frames)} frames but {table} has {len(usable)} rows; rerun rule frames")
        kept.append(frames[usable])
    pool = np.concatenate(kept)
    if len(pool) == 0:
        raise ValueError(f"no usable aligned frame in {[str(v) for v in videos]}")

    def sample(n: int, rng: torch.Generator) -> tuple[torch.Tensor, None]:
        index = torch.randint(0, len(pool), (n,), generator=rng).numpy()
        return to_tensor(pool[index]), None

    return sample


def train_encoder(
    out_dir: str | os.PathLike,
    G: Generator,
    source: ImageSource,
    cfg: EncoderTrainingConfig,
    lpips: nn.Module | None = None,
    identity: nn.Module | None = None,
    device: str | torch.device = "cpu",
    time_limit_s: float | None = None,
) -> ReStyleEncoder:
    """Train (or resume training) a ReStyle encoder for the frozen generator ``G``; returns it in eval mode.

    Args:
        out_dir: working folder: ``checkpoint.pt`` (every ``cfg.checkpoint_every`` steps, atomic; resumed from
            when made with the same config), ``losses.json``, ``loss.png`` and ``validation.png``.
        G: the generator (not modified; its ``mapping.w_avg`` is the starting latent).
        source: training images (see :data:`ImageSource`), e.g. :func:`aligned_video_source`.
        lpips: a LPIPS module taking two ``[N, 3, H, W]`` batches in [-1, 1] (see sg3pipe.metrics.lpips_loader).
        identity: an identity loss ``(y_hat, y) -> [N]`` (see sg3pipe.metrics.arcface.load_identity_loss).
        time_limit_s: stop early (after a checkpoint) so a long run can be split over several invocations.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    decoder = Generator(**G.init_kwargs).to(device)
    decoder.load_state_dict(G.state_dict())
    decoder.eval().requires_grad_(False)
    enc = ReStyleEncoder(BackboneEncoder(**cfg.encoder_kwargs(G)), decoder, G.mapping.w_avg.detach()).to(device)
    if cfg.init_from is not None:
        enc.encoder.load_state_dict(load_encoder(cfg.init_from).encoder.state_dict())
    enc.encoder.train()
    optimizer = torch.optim.Adam(enc.encoder.parameters(), lr=cfg.lr)
    adversarial = cfg.variant == "e4e" and cfg.w_adv_lambda > 0
    image_losses = (
        cfg.l2_lambda > 0
        or (lpips is not None and cfg.lpips_lambda > 0)
        or (identity is not None and cfg.id_lambda > 0)
    )
    D = LatentDiscriminator(G.w_dim).to(device)
    d_optimizer = torch.optim.Adam(D.parameters(), lr=cfg.d_lr, betas=(0.9, 0.999))
    rng = torch.Generator().manual_seed(cfg.seed + 1)
    parts = {"encoder": enc.encoder, "discriminator": D, "optimizer": optimizer, "d_optimizer": d_optimizer}
    step, losses = resume(out_dir, parts, rng, asdict(cfg), device)
    started = time.monotonic()
    while step < cfg.steps:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr)
        optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for _ in range(cfg.accumulate):
            images, ws_true = source(cfg.batch, rng)
            images = images.to(device)
            fakes = []
            for ws, out in enc.passes(images, cfg.n_iters, grad_encoder=True, grad_render=image_losses):
                terms = {}
                if cfg.l2_lambda > 0:
                    terms["l2"] = cfg.l2_lambda * F.mse_loss(out, images)
                if lpips is not None and cfg.lpips_lambda > 0:
                    terms["lpips"] = cfg.lpips_lambda * lpips(out, images).mean()
                if identity is not None and cfg.id_lambda > 0:
                    terms["id"] = cfg.id_lambda * identity(out, images).mean()
                if ws_true is not None and cfg.latent_lambda > 0:
                    terms["latent"] = cfg.latent_lambda * F.mse_loss(ws, ws_true.to(device))
                if cfg.variant == "e4e" and cfg.delta_norm_lambda > 0:
                    deltas = ws[:, 1:] - ws[:, :1]
                    terms["delta_norm"] = cfg.delta_norm_lambda * deltas.norm(dim=2).sum(dim=1).mean()
                if adversarial:
                    terms["w_adv"] = cfg.w_adv_lambda * F.softplus(-D(ws.flatten(0, 1))).mean()
                    fakes.append(ws.detach().flatten(0, 1))
                loss = sum(terms.values())
                (loss / (cfg.accumulate * cfg.n_iters)).backward()
                for name, value in terms.items():
                    totals[name] = totals.get(name, 0.0) + value.item() / (cfg.accumulate * cfg.n_iters)
            if adversarial:
                d_loss = _discriminator_step(D, d_optimizer, G, fakes, cfg, rng)
                totals["d"] = totals.get("d", 0.0) + d_loss / cfg.accumulate
        optimizer.step()
        step += 1
        losses.append(totals)
        if step % 10 == 0:
            recent = {k: np.mean([entry[k] for entry in losses[-10:]]) for k in totals}
            log.info("step %d/%d %s", step, cfg.steps, " ".join(f"{k} {v:.5f}" for k, v in recent.items()))
        out_of_time = time_limit_s is not None and time.monotonic() - started > time_limit_s
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time:
            save_checkpoint(out_dir, parts, rng, step, losses, asdict(cfg))
        if out_of_time:
            break
    enc.eval()
    write_training_figures(enc, source, losses, out_dir, cfg.n_iters)
    return enc


def _discriminator_step(D, d_optimizer, G, fakes, cfg, rng) -> float:
    """One latent-discriminator update on the encoder's rows (fake) and mapping outputs (real), with R1."""
    fake = torch.cat(fakes)
    device = fake.device
    with torch.no_grad():
        real = G.mapping(torch.randn(len(fakes[0]), G.z_dim, generator=rng).to(device))[:, 0]
    real.requires_grad_(True)
    real_logits = D(real)
    (r1,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    loss = (
        F.softplus(-real_logits).mean() + F.softplus(D(fake)).mean() + cfg.r1_gamma / 2 * r1.square().sum(dim=1).mean()
    )
    d_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    d_optimizer.step()
    return loss.item()


@torch.no_grad()
def encoder_quality(
    enc: ReStyleEncoder, source: ImageSource, n: int = 256, n_iters: int = 3, seed: int = 2024, batch: int = 32
) -> dict:
    """Reconstruction quality of ``enc`` on ``n`` held-out images of ``source`` (seeded unlike training).

    Returns:
        ``{"psnr_db": [mean PSNR (dB, images in [-1, 1]) after pass 1, ..., n_iters], "n": n}``.
    """
    rng = torch.Generator().manual_seed(seed)
    device = enc.latent_avg.device
    per_iter: list[list[torch.Tensor]] = [[] for _ in range(n_iters)]
    for start in range(0, n, batch):
        images, _ = source(min(batch, n - start), rng)
        images = images.to(device)
        for t, (_, out) in enumerate(enc.passes(images, n_iters)):
            mse = (out.clamp(-1, 1) - images).square().mean(dim=[1, 2, 3]).double()
            per_iter[t].append(10 * torch.log10(4 / mse))
    return {"psnr_db": [float(torch.cat(values).mean()) for values in per_iter], "n": n}


def write_training_figures(
    enc: ReStyleEncoder, source: ImageSource, losses: list[dict], out_dir: Path, n_iters: int
) -> None:
    """``loss.png`` (each loss term per step) and ``validation.png`` (rows: 8 held-out targets, then the
    reconstruction after each pass)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from sg3pipe.pixels import to_uint8

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in sorted({key for entry in losses for key in entry}):
        ax.semilogy([entry.get(name, np.nan) for entry in losses], lw=0.8, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if losses:
        ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(out_dir / "loss.png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)

    images, _ = source(8, torch.Generator().manual_seed(12345))
    with torch.no_grad():
        rows = [images] + [out.cpu() for _, out in enc.passes(images.to(enc.latent_avg.device), n_iters)]
    tiles = to_uint8(torch.cat([row.clamp(-1, 1) for row in rows]))  # [rows * 8, R, R, 3]
    r = tiles.shape[1]
    grid = tiles.reshape(len(rows), 8, r, r, 3).transpose(0, 2, 1, 3, 4).reshape(len(rows) * r, 8 * r, 3)
    with atomic_path(out_dir / "validation.png") as tmp:
        Image.fromarray(grid).save(tmp)
