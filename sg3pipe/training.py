"""What the training loops (synthetic generator, encoders) share: the learning-rate schedule and resumable
checkpoints in a working folder.

A working folder holds ``checkpoint.pt`` (the loop's state: the state dicts of its named modules and
optimisers, step, RNG state, ``losses`` and ``config``, written atomically) and ``losses.json`` (the per-step
losses, for plotting while a run goes on). A run resumes from the checkpoint when its config equals the
checkpoint's in everything but ``steps``: a run may be extended (or shortened), which only stretches the
schedule.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sg3pipe.io.atomic import atomic_path

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


def cosine_lr(step: int, steps: int, lr: float) -> float:
    """Learning rate at ``step`` of ``steps``: cosine decay from ``lr`` to ``lr / 20``, constant after ``steps``."""
    progress = min(step / max(steps, 1), 1.0)
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


class CheckpointMismatchError(ValueError):
    """A checkpoint was made with another config or other inputs, so it cannot be resumed."""


def _without_steps(config: dict) -> dict:
    # The JSON round trip makes tuples and lists compare equal.
    return {k: v for k, v in json.loads(json.dumps(config)).items() if k != "steps"}


def resume(
    out_dir: Path, parts: Mapping[str, Any], rng: torch.Generator, config: dict, device: str | torch.device = "cpu"
) -> tuple[int, list]:
    """Restore ``parts`` (name -> module or optimiser) and ``rng`` from ``out_dir/checkpoint.pt`` when there is one.

    Returns:
        ``(step, losses)`` of the checkpoint, or ``(0, [])`` when there is none (``parts`` untouched).

    Raises:
        CheckpointMismatchError: the checkpoint was made with another config (``steps`` aside).
    """
    checkpoint = Path(out_dir) / CHECKPOINT
    if not checkpoint.exists():
        return 0, []
    state = torch.load(checkpoint, map_location=device, weights_only=False)  # our own file, written by save_checkpoint
    if _without_steps(state["config"]) != _without_steps(config):
        raise CheckpointMismatchError(f"{checkpoint} was made with another config; delete it or use that config")
    for name, part in parts.items():
        part.load_state_dict(state[name])
    rng.set_state(state["rng"])
    log.info("resumed %s at step %d", checkpoint, state["step"])
    return state["step"], state["losses"]


def remove_checkpoint(out_dir: str | os.PathLike) -> None:
    """Delete what :func:`save_checkpoint` writes in ``out_dir`` (``checkpoint.pt``, ``losses.json``), then
    ``out_dir`` itself when nothing else is in it."""
    out_dir = Path(out_dir)
    for name in (CHECKPOINT, "losses.json"):
        (out_dir / name).unlink(missing_ok=True)
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


def save_checkpoint(
    out_dir: Path, parts: Mapping[str, Any], rng: torch.Generator, step: int, losses: list, config: dict
) -> None:
    """Write the state dicts of ``parts`` (name -> module or optimiser), ``rng``'s state, ``step``, ``losses``
    and ``config`` to ``out_dir/checkpoint.pt``, and ``losses`` to ``out_dir/losses.json``, each atomically."""
    out_dir = Path(out_dir)
    state = {name: part.state_dict() for name, part in parts.items()}
    state.update(step=step, rng=rng.get_state(), losses=losses, config=config)
    with atomic_path(out_dir / CHECKPOINT) as tmp:
        torch.save(state, tmp)
    with atomic_path(out_dir / "losses.json") as tmp:
        tmp.write_text(json.dumps(losses))
