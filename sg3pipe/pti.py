"""Per-video pivotal tuning (PTI, Roich et al. 2022): fine-tune a copy of the generator on one video's crops.

Every usable frame ``i`` has a fixed pivot latent ``w_i`` (its inversion, ``[num_ws, w_dim]``) and its crop
transform ``M_i`` (the content-moving similarity of the frames stage, sg3pipe.transforms). The frame's render
is ``G.synthesis(w_i, transform=inverse(M_i))``, as for ``crop_l2`` in sg3pipe.inversion, and the generator
is tuned so that this render matches the frame's unaligned crop. The recipe of the official video code
(yuval-alaluf/stylegan3-editing ``inversion/video/run_pti_video.py`` on ``inversion/scripts/run_pti_images.py``,
after danielroich/PTI):

* loss ``l2_lambda * MSE + lpips_lambda * LPIPS`` (LPIPS only when a module is given) between the renders and
  the crops, both in [-1, 1];
* Adam with a constant learning rate and the default betas, ``batch`` frames per step;
* the Fourier input layer (``synthesis.input``: its ``weight`` and ``affine``) and the whole mapping network
  are frozen; every other synthesis parameter trains. The pivots never change.

What this module does differently: the input generator is never modified (a deep copy is tuned); the
batches are drawn with a seeded ``torch.Generator`` from the usable frames only (frames with NaN latents are
never rendered) and read by frame index from a file of the crops (sg3pipe.video.frame_store), so memory holds
a batch of crops, not the clip (the official code loads every frame); the early stop (:class:`EarlyStop`) is a
plateau test on the loss that cannot run past ``steps``; and the run is resumable from ``work_dir/checkpoint.pt``
(sg3pipe.training), so a long tuning can be split over several jobs with ``time_limit_s`` or
``max_steps_this_run``.

A run that stopped for time (``PTIResult.outcome == "interrupted"``) leaves only its checkpoint: callers write
the tuned generator (``sg3pipe.networks.loading.save_generator``) only when ``PTIResult.done``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import math
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.tables import column_array, read_table, write_table
from sg3pipe.networks.loading import save_generator
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.pixels import to_tensor
from sg3pipe.settings import settings as settings_from_config
from sg3pipe.training import CheckpointMismatchError, remove_checkpoint, resume, save_checkpoint
from sg3pipe.video.frame_store import FrameStore

log = logging.getLogger(__name__)

OUTCOMES = ("completed", "early_stop", "interrupted")
LOSS_COLUMNS = ("step", "loss", "l2", "lpips")
CROPS_FILE = "crops.u8"  # tune_video's random-access copy of crops.mkv in the working folder, deleted after the run
HASH_CHUNK = 8  # crops hashed at once by the resume fingerprint


@dataclass(frozen=True)
class PTISettings:
    """Config ``pti``: the optimisation of one video's pivotal tuning."""

    steps: int = 200  # optimisation steps at most (paper: 8000)
    lr: float = 3e-4  # Adam learning rate, constant
    batch: int = 2  # frames per step (paper: 2, official video code: 4); at most the number of usable frames
    l2_lambda: float = 1.0  # weight of the MSE term
    lpips_lambda: float = 1.0  # weight of the LPIPS term, used only when tune_generator gets an LPIPS module
    checkpoint_every: int = 50  # steps between checkpoints in the working folder
    early_stop_patience: int = 0  # 0: off; else the plateau test of EarlyStop over windows of this many steps
    early_stop_min_delta: float = 0.01  # relative improvement of the windowed mean loss that counts as progress
    seed: int = 0  # seed of the frame sampling
    # Keep work_dir/checkpoint.pt (the tuned generator and its Adam state, about 3x the generator) once the
    # results are written, so that a rerun with more steps goes on from it; False deletes it (dataset runs).
    keep_checkpoint: bool = False


def pti_settings(config: dict | None) -> PTISettings:
    """:class:`PTISettings` from the config's ``pti`` section (``None``: the defaults).

    Raises:
        ValueError: unknown keys (named in the message) or values out of range.
    """
    return _checked(settings_from_config(PTISettings, config))


def _checked(s: PTISettings) -> PTISettings:
    problems = []
    if s.steps < 0:
        problems.append(f"steps must be >= 0, got {s.steps}")
    if not s.lr >= 0:
        problems.append(f"lr must be >= 0, got {s.lr}")
    if s.batch < 1:
        problems.append(f"batch must be >= 1, got {s.batch}")
    if not (s.l2_lambda >= 0 and s.lpips_lambda >= 0):
        problems.append(f"l2_lambda and lpips_lambda must be >= 0, got {s.l2_lambda} and {s.lpips_lambda}")
    if s.checkpoint_every < 1:
        problems.append(f"checkpoint_every must be >= 1, got {s.checkpoint_every}")
    if s.early_stop_patience < 0:
        problems.append(f"early_stop_patience must be >= 0 (0: off), got {s.early_stop_patience}")
    if not 0 <= s.early_stop_min_delta < 1:
        problems.append(f"early_stop_min_delta must be in [0, 1), got {s.early_stop_min_delta}")
    if problems:
        raise ValueError("invalid pti settings: " + "; ".join(problems))
    return s


class EarlyStop:
    """Plateau test on a loss sequence, fed one step's loss at a time.

    After each step from the ``patience``-th on, the window mean ``m`` of the last ``patience`` losses counts as
    progress when ``m < best * (1 - min_delta)``, and then becomes ``best``. :meth:`update` says stop once
    ``patience`` window means in a row made no progress; a flat loss therefore stops after ``2 * patience``
    steps. ``patience == 0`` never stops. The state is a function of the losses alone, so a resumed run rebuilds
    it by replaying the checkpoint's losses. The caller's loop is bounded by ``steps`` whatever this says.
    """

    def __init__(self, patience: int, min_delta: float):
        self.patience = patience
        self.min_delta = min_delta
        self.window: deque[float] = deque(maxlen=max(patience, 1))
        self.best = math.inf
        self.since_best = 0

    def update(self, loss: float) -> bool:
        """Add one step's loss; ``True`` when the loss has plateaued."""
        if self.patience == 0:
            return False
        self.window.append(loss)
        if len(self.window) < self.patience:
            return False
        mean = sum(self.window) / self.patience
        if mean < self.best * (1 - self.min_delta):
            self.best, self.since_best = mean, 0
        else:
            self.since_best += 1
        return self.since_best >= self.patience


@dataclass
class PTIResult:
    """What :func:`tune_generator` returns."""

    generator: Generator  # the tuned copy, eval mode, with the input generator's ``source``
    losses: list[dict]  # one record per step done so far (this run and the runs it resumed)
    outcome: str  # completed: ran all steps | early_stop: the loss plateaued | interrupted: out of time

    @property
    def done(self) -> bool:
        """Whether the tuning is finished (``completed`` or ``early_stop``); else rerun to resume it."""
        return self.outcome != "interrupted"


@dataclass
class _Video:
    """One video's tuning data, checked; ``index`` lists the usable frames (the only ones ever rendered)."""

    crops: np.ndarray | FrameStore  # [N, R, R, 3] uint8; read only by index (the frames of a batch)
    ws: torch.Tensor  # [N, num_ws, w_dim] float32 on the generator's device
    synthesis_transforms: torch.Tensor  # [N, 3, 3] float32 inverse(M) on the device; identity where unusable
    usable: np.ndarray  # [N] bool
    index: np.ndarray  # [U] int64 indices of the usable frames


def tune_generator(
    G: Generator,
    crops: np.ndarray | FrameStore,
    ws: np.ndarray | torch.Tensor,
    transforms: np.ndarray | torch.Tensor,
    settings: PTISettings,
    work_dir: str | os.PathLike,
    lpips: nn.Module | None = None,
    usable: np.ndarray | None = None,
    time_limit_s: float | None = None,
    max_steps_this_run: int | None = None,
) -> PTIResult:
    """Tune a copy of ``G`` on one video's unaligned crops (module docstring), or resume that tuning.

    Args:
        G: the generator to start from; not modified. The tuning runs on its device.
        crops: ``[N, R, R, 3]`` uint8 unaligned crops (``R = G.img_resolution``); pixel ``x`` is ``x / 127.5 - 1``.
            An array, or a :class:`~sg3pipe.video.frame_store.FrameStore` on disk: only the frames of each batch
            are then read, so the memory of the tuning does not grow with the clip.
        ws: ``[N, num_ws, w_dim]`` float32 pivot latents (fixed), NaN for frames that were not inverted.
        transforms: ``[N, 3, 3]`` float64 content-moving crop transforms ``M``; each frame renders with
            ``transform=inverse(M)``. Only usable frames' matrices are read.
        settings: see :class:`PTISettings`.
        work_dir: working folder: ``checkpoint.pt`` (every ``settings.checkpoint_every`` steps, at the last step,
            at an early stop and when stopping for time; written atomically) and ``losses.json``. A rerun with
            the same settings (``steps`` may differ: a run can be extended) and the same inputs resumes there
            and ends with the same weights as one uninterrupted run; a checkpoint of other settings or inputs is
            deleted (with a warning) and the tuning starts over.
        lpips: a module ``(a, b) -> [B, 1, 1, 1]`` distances of two ``[B, 3, R, R]`` batches in [-1, 1] on ``G``'s
            device (``sg3pipe.metrics.lpips_loader.load_lpips``); ``None``: no LPIPS term.
        usable: ``[N]`` bool, the frames to tune on; ``None``: the frames whose latents are finite.
        time_limit_s: stop (after writing a checkpoint) at the first step that ends later than this many seconds
            after the start, so a long tuning can be split over several jobs.
        max_steps_this_run: stop (after writing a checkpoint) after this many steps in this call; the same as
            ``time_limit_s`` but counted in steps, hence reproducible.

    Returns:
        A :class:`PTIResult`; each loss record is ``{"step": int (0-based), "loss": float, "l2": float, "lpips":
        float or nan}``, the step's batch loss measured before its update (see :func:`pti_loss_table`).

    Raises:
        ValueError: invalid settings; inputs of the wrong shape or type; no usable frame; a usable frame with
            non-finite latents or transform.
        FloatingPointError: the loss became non-finite (the learning rate is too high).
    """
    _checked(settings)
    device = G.mapping.w_avg.device
    video = _video(G, crops, ws, transforms, usable, device)
    if len(video.index) == 0:
        raise ValueError(
            f"no usable frame to tune the generator on: all {len(video.usable)} frames are marked unusable "
            "(frames without a face or latent); check the frames and inversion stages of this video"
        )
    batch = min(settings.batch, len(video.index))
    if batch < settings.batch:
        log.warning("only %d usable frames: batches of %d instead of %d", batch, batch, settings.batch)

    tuned = copy.deepcopy(G).eval()  # deepcopy keeps G.source, so the saved file names its starting point
    tuned.requires_grad_(False)
    trainable = [p for name, p in tuned.synthesis.named_parameters() if not name.startswith("input.")]
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(trainable, lr=settings.lr)
    rng = torch.Generator().manual_seed(settings.seed)
    parts = {"generator": tuned, "optimizer": optimizer}
    config = {**dataclasses.asdict(settings), "inputs": _fingerprint(G, video, lpips)}
    del config["keep_checkpoint"]  # what happens after the run is not part of the run

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        step, losses = resume(work_dir, parts, rng, config, device)
    except CheckpointMismatchError:
        # The checkpoint is a cache of this job: other settings, another generator or other pivots made it, so no
        # run of this job can continue it (Snakemake reruns the job because those inputs changed).
        log.warning("%s holds a tuning of other settings or inputs; starting over", work_dir)
        remove_checkpoint(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        step, losses = resume(work_dir, parts, rng, config, device)
    if step > settings.steps:
        log.warning("the checkpoint in %s is at step %d, past steps=%d; keeping it", work_dir, step, settings.steps)
    early_stop = EarlyStop(settings.early_stop_patience, settings.early_stop_min_delta)
    plateau = False
    for record in losses:  # rebuild the plateau test's state of the resumed run
        plateau = early_stop.update(record["loss"])

    log.info(
        "PTI on %d of %d frames in %s: step %d of %d, batch %d, lr %g, %s",
        len(video.index), len(video.usable), work_dir, step, settings.steps, batch, settings.lr,
        "MSE + LPIPS" if lpips is not None else "MSE only",
    )  # fmt: skip
    started, ran = time.monotonic(), 0
    out_of_time = max_steps_this_run is not None and max_steps_this_run <= 0
    every = max(1, settings.steps // 20)
    while step < settings.steps and not plateau and not out_of_time:
        frames = video.index[torch.randperm(len(video.index), generator=rng)[:batch].numpy()]
        record = _step(tuned, optimizer, video, frames, settings, lpips)
        record["step"] = step
        if not math.isfinite(record["loss"]):
            raise FloatingPointError(
                f"PTI loss became {record['loss']} at step {step} (lr {settings.lr}); lower pti.lr and delete "
                f"{work_dir / 'checkpoint.pt'} to restart"
            )
        losses.append(record)
        step += 1
        ran += 1
        plateau = early_stop.update(record["loss"])
        out_of_time = (time_limit_s is not None and time.monotonic() - started > time_limit_s) or (
            max_steps_this_run is not None and ran >= max_steps_this_run
        )
        if step % settings.checkpoint_every == 0 or step == settings.steps or plateau or out_of_time:
            save_checkpoint(work_dir, parts, rng, step, losses, config)
        if step % every == 0 or step == settings.steps:
            recent = losses[-every:]
            log.info("PTI step %d/%d loss %.5f", step, settings.steps, np.mean([r["loss"] for r in recent]))

    if plateau:
        outcome = "early_stop"
        log.info("PTI stopped early at step %d of %d: the loss plateaued", step, settings.steps)
    elif step >= settings.steps:
        outcome = "completed"
    else:
        outcome = "interrupted"
        log.info("PTI interrupted at step %d of %d; rerun to resume from %s", step, settings.steps, work_dir)
    for p_tuned, p in zip(tuned.parameters(), G.parameters(), strict=True):
        p_tuned.requires_grad_(p.requires_grad)  # hand it back as trainable as the input was
    return PTIResult(tuned.eval(), losses, outcome)


def _step(
    G: Generator,
    optimizer: torch.optim.Optimizer,
    video: _Video,
    frames: np.ndarray,
    s: PTISettings,
    lpips: nn.Module | None,
) -> dict:
    """One Adam step on the batch of ``frames`` ``[B]``; returns the loss record (without ``step``)."""
    render, target = _render(G, video, frames)
    l2 = (render - target).square().mean()
    loss = s.l2_lambda * l2
    lpips_value = math.nan
    if lpips is not None:
        distance = lpips(render, target).mean()
        loss = loss + s.lpips_lambda * distance
        lpips_value = distance.item()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), "l2": l2.item(), "lpips": lpips_value}


def _render(G: Generator, video: _Video, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The renders of ``frames [B]`` with their pivots and transforms, and their crops, ``[B, 3, R, R]`` each."""
    rows = torch.from_numpy(frames).to(video.ws.device)
    render = G.synthesis(video.ws[rows], transform=video.synthesis_transforms[rows])
    return render, to_tensor(video.crops[frames]).to(render.device)


def evaluate_l2(
    G: Generator,
    crops: np.ndarray | FrameStore,
    ws: np.ndarray | torch.Tensor,
    transforms: np.ndarray | torch.Tensor,
    usable: np.ndarray | None = None,
    batch: int = 8,
) -> np.ndarray:
    """Per-frame MSE of each frame's render ``G.synthesis(w, transform=inverse(M))`` against its crop.

    Args:
        crops, ws, transforms, usable: as for :func:`tune_generator`.
        batch: frames rendered at once (no gradients).

    Returns:
        ``[N]`` float64 MSE over pixels and channels in [-1, 1] units (4 is the largest possible); NaN for
        unusable frames.
    """
    video = _video(G, crops, ws, transforms, usable, G.mapping.w_avg.device)
    out = np.full(len(video.usable), np.nan)
    with torch.no_grad():
        for start in range(0, len(video.index), batch):
            frames = video.index[start : start + batch]
            render, target = _render(G, video, frames)
            out[frames] = (render - target).square().mean(dim=(1, 2, 3)).double().cpu().numpy()
    return out


def pti_loss_table(losses: list[dict]) -> dict[str, np.ndarray]:
    """The loss records of :func:`tune_generator` as columns for ``sg3pipe.io.tables.write_table``: one row per
    step, ``step`` int64, ``loss``, ``l2`` and ``lpips`` float64 (NaN where LPIPS was not used)."""
    return {
        "step": np.array([r["step"] for r in losses], dtype=np.int64),
        **{name: np.array([r[name] for r in losses], dtype=np.float64) for name in LOSS_COLUMNS[1:]},
    }


def _video(
    G: Generator,
    crops: np.ndarray | FrameStore,
    ws: np.ndarray | torch.Tensor,
    transforms: np.ndarray | torch.Tensor,
    usable: np.ndarray | None,
    device: torch.device,
) -> _Video:
    """Check the inputs' shapes and types against ``G`` and each other, and put them in one :class:`_Video`."""
    if not isinstance(crops, FrameStore):
        crops = np.asarray(crops)
    ws = torch.as_tensor(ws).detach().to("cpu", torch.float32)
    transforms = torch.as_tensor(transforms).detach().to("cpu", torch.float64)
    n, r = len(crops), G.img_resolution
    if crops.dtype != np.uint8 or crops.shape != (n, r, r, G.img_channels):
        raise ValueError(
            f"crops: expected [N, {r}, {r}, {G.img_channels}] uint8 (the generator's resolution), "
            f"got {list(crops.shape)} {crops.dtype}"
        )
    if tuple(ws.shape) != (n, G.num_ws, G.w_dim):
        raise ValueError(f"ws: expected [{n}, {G.num_ws}, {G.w_dim}] (one pivot per crop), got {list(ws.shape)}")
    if tuple(transforms.shape) != (n, 3, 3):
        raise ValueError(f"transforms: expected [{n}, 3, 3] (one per crop), got {list(transforms.shape)}")
    finite = torch.isfinite(ws).flatten(1).all(dim=1).numpy()
    if usable is None:
        usable = finite
    usable = np.asarray(usable)
    if usable.dtype != bool or usable.shape != (n,):
        raise ValueError(f"usable: expected [{n}] bool, got {list(usable.shape)} {usable.dtype}")
    bad = np.flatnonzero(usable & ~(finite & torch.isfinite(transforms).flatten(1).all(dim=1).numpy()))
    if len(bad):
        raise ValueError(f"frames {bad[:8].tolist()} are marked usable but their latents or transforms are not finite")
    synthesis_transforms = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
    synthesis_transforms[torch.from_numpy(usable)] = torch.linalg.inv(transforms[torch.from_numpy(usable)])
    return _Video(
        crops=crops,
        ws=ws.to(device),
        synthesis_transforms=synthesis_transforms.float().to(device),
        usable=usable,
        index=np.flatnonzero(usable),
    )


def _fingerprint(G: Generator, video: _Video, lpips: nn.Module | None) -> str:
    """SHA-256 of everything a resumed run must share with the run it resumes: the starting generator's
    weights, the LPIPS module's, and the video's crops, pivots, transforms and usable mask."""
    digest = hashlib.sha256()

    def add(name: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        digest.update(f"{name} {array.dtype} {array.shape};".encode())
        digest.update(array.data)

    modules = {"G": G, "lpips": lpips} if lpips is not None else {"G": G}
    for prefix, module in modules.items():
        for key, tensor in module.state_dict().items():
            add(f"{prefix}.{key}", tensor.detach().to("cpu").numpy())
    crops = video.crops  # hashed a chunk at a time: the same digest as the whole array's bytes
    digest.update(f"crops {crops.dtype} {crops.shape};".encode())
    for start in range(0, len(crops), HASH_CHUNK):
        digest.update(np.ascontiguousarray(crops[start : start + HASH_CHUNK]).data)
    add("ws", video.ws.cpu().numpy())
    add("synthesis_transforms", video.synthesis_transforms.cpu().numpy())
    add("usable", video.usable)
    return digest.hexdigest()


def tune_video(
    paths: dict[str, str | os.PathLike],
    G: Generator,
    settings: PTISettings,
    work_dir: str | os.PathLike,
    outputs: dict[str, str | os.PathLike],
    lpips: nn.Module | None = None,
    provenance: dict | None = None,
    time_limit_s: float | None = None,
) -> PTIResult:
    """Tune ``G`` on one video from its tables and write the results (the rule's library call).

    Args:
        paths: ``frames`` and ``latents`` (tables; the pivots are the raw per-frame latents and the transforms
            the frames stage's) and ``crops`` (``crops.mkv``).
        work_dir: the checkpoint's folder (:func:`tune_generator`); removed once the results are written unless
            ``settings.keep_checkpoint``. While the tuning runs it also holds the crops decoded into a file read by
            frame index (:data:`CROPS_FILE`, ``R * R * 3`` bytes a frame), deleted when the call ends, however it ends.
        outputs: ``losses`` (one row per step; the metadata holds the mean per-frame MSE of the transformed
            render before and after, ``start_l2`` and ``end_l2``, and the outcome), ``curve`` (a PNG of the loss
            per step) and optionally ``generator`` (sg3pipe ``.safetensors``; its metadata keeps the SHA-256 of
            the file ``G`` was loaded from). Written only when the tuning is done.

    Returns:
        The :class:`PTIResult`; when it is ``interrupted`` nothing but the checkpoint is written, and a rerun
        resumes.
    """
    frames, _ = read_table(paths["frames"])
    latents, meta = read_table(paths["latents"])
    ws = column_array(latents, "latent", tuple(meta["shapes"]["latent"]))
    transforms = column_array(frames, "transform", (3, 3)).astype(np.float64)
    usable = latents["inverted"].to_numpy().astype(bool)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    # The batches are random frames: decoded once into a file read by index, never all held at once.
    with FrameStore.from_video(paths["crops"], work_dir / CROPS_FILE) as crops:
        if len(crops) != len(ws):
            raise ValueError(f"{paths['crops']} holds {len(crops)} frames but {paths['latents']} lists {len(ws)}; "
                             "rerun the frames and encode rules for this video")  # fmt: skip
        start_l2 = evaluate_l2(G, crops, ws, transforms, usable)
        result = tune_generator(G, crops, ws, transforms, settings, work_dir, lpips, usable, time_limit_s)
        if not result.done:
            return result
        end_l2 = evaluate_l2(result.generator, crops, ws, transforms, usable)
    metadata = {
        "provenance": provenance or {},
        "pti": dataclasses.asdict(settings),
        "outcome": result.outcome,
        "start_l2": float(np.nanmean(start_l2)),
        "end_l2": float(np.nanmean(end_l2)),
    }
    log.info("PTI %s after %d steps: mean L2 %.5f -> %.5f", result.outcome, len(result.losses),
             metadata["start_l2"], metadata["end_l2"])  # fmt: skip
    _loss_curve(result.losses, outputs["curve"])
    write_table(outputs["losses"], pti_loss_table(result.losses), metadata)
    if outputs.get("generator"):
        save_generator(result.generator, outputs["generator"])
    if not settings.keep_checkpoint:
        remove_checkpoint(work_dir)
    return result


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """``[N]`` -> ``[N]``: the mean of each value and the ``window - 1`` before it (fewer at the start)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def _loss_curve(losses: list[dict], path: str | os.PathLike) -> None:
    """A PNG of the loss and its L2 term per step, faint, with their running means over a tenth of the steps
    on top (each step's loss is of another random batch of frames, so the raw curve is noisy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pti_loss_table(losses)
    window = max(1, len(table["step"]) // 10)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for column, label in (("loss", "loss"), ("l2", "L2 term")):
        (raw,) = ax.plot(table["step"], table[column], lw=0.6, alpha=0.35)
        mean = running_mean(table[column], window)
        ax.plot(table["step"], mean, lw=1.4, color=raw.get_color(), label=f"{label} ({window}-step mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
