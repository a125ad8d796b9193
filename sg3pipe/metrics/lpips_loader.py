"""LPIPS (Zhang et al. 2018) with its ImageNet backbone read from a file the user configures.

The ``lpips`` package builds its backbone with torchvision's ``pretrained=True``, which downloads the ImageNet
weights. Here the backbone is built without weights (``pnet_rand=True``) and the torchvision state dict is
read from the configured file (``encode.lpips_weights``); the linear calibration layers ship inside the
``lpips`` package (``lpips/weights/v0.1/{net}.pth``) and are used as they are. Nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch

# LPIPS backbone -> the torchvision ImageNet weights file it needs, and where to get it.
BACKBONE_FILES = {
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
}
_SLICE_KEY = re.compile(r"slice\d+\.(\d+\..+)")  # lpips' backbone names: slice{k}.{index in features}.{param}


class LpipsWeightsError(ValueError):
    """The configured LPIPS backbone file cannot be used (not a state dict, or not the backbone's weights)."""


def _where_to_get(net: str) -> str:
    name, url = BACKBONE_FILES[net]
    return (
        f"download torchvision's ImageNet {net} weights {name} from {url} on a machine with network access "
        f"(or take it from a torch hub cache, $TORCH_HOME/hub/checkpoints/) and set encode.lpips_weights to its path"
    )


def load_lpips(backbone_path: str | os.PathLike, net: str = "alex", device: str | torch.device = "cpu"):
    """LPIPS ``net`` with the backbone weights of ``backbone_path`` (a torchvision ``alexnet``/``vgg16``
    state dict, e.g. ``alexnet-owt-7be5be79.pth``).

    Returns:
        An ``lpips.LPIPS`` module on ``device`` in eval mode with frozen weights; ``m(a, b)`` takes two
        ``[N, 3, H, W]`` batches in [-1, 1] and returns ``[N, 1, 1, 1]`` distances (0 for equal images).

    Raises:
        FileNotFoundError: no file at ``backbone_path`` (the message says where to get it).
        LpipsWeightsError: the file is not a torchvision state dict of the ``net`` backbone.
    """
    if net not in BACKBONE_FILES:
        raise ValueError(f"unknown LPIPS backbone {net!r}; expected one of {sorted(BACKBONE_FILES)}")
    path = Path(backbone_path)
    if not path.is_file():
        raise FileNotFoundError(f"LPIPS backbone weights file {path} does not exist: {_where_to_get(net)}")
    backbone = _read_state_dict(path, net)
    import lpips

    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    wanted = model.net.state_dict()
    renamed = {key: backbone.get("features." + _SLICE_KEY.fullmatch(key).group(1)) for key in wanted}
    misfits = [k for k, t in renamed.items() if t is None or tuple(t.shape) != tuple(wanted[k].shape)]
    if misfits:
        raise LpipsWeightsError(
            f"LPIPS backbone weights file {path} does not hold torchvision's {net} weights (missing or misshapen: "
            f"{', '.join('features.' + _SLICE_KEY.fullmatch(k).group(1) for k in misfits[:4])}); {_where_to_get(net)}"
        )
    model.net.load_state_dict(renamed)
    model.requires_grad_(False)
    return model.to(device).eval()


def _read_state_dict(path: Path, net: str) -> dict[str, torch.Tensor]:
    """The tensors of a torch state-dict file, read with ``weights_only`` (no code in the file runs)."""
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same error for the user
        raise LpipsWeightsError(f"LPIPS backbone weights file {path} is not a readable torch file ({err}); "
                                f"{_where_to_get(net)}") from None  # fmt: skip
    if not isinstance(state_dict, dict) or not all(isinstance(t, torch.Tensor) for t in state_dict.values()):
        raise LpipsWeightsError(f"LPIPS backbone weights file {path} is not a state dict; {_where_to_get(net)}")
    return state_dict
