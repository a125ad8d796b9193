"""Pick the torch device for model work: Snakemake assigns no GPU ids, so each job chooses itself."""

from __future__ import annotations

import torch


def pick_device(requested: str = "auto") -> torch.device:
    """``"auto"``: the first CUDA device when one is present, else the CPU; anything else as torch reads it.

    A requested CUDA device on a machine without one is an error naming the config key to change.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"config device is {requested!r} but this machine has no CUDA device; set device: auto")
    return device
