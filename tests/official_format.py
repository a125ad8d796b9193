"""Write network pickles in NVIDIA's official StyleGAN3 format, for tests, without NVIDIA's code.

The structure is the one NVlabs/stylegan3 writes (``training/training_loop.py``, ``torch_utils/persistence.py``):
a plain pickle of ``{G, D, G_ema, training_set_kwargs, augment_pipe}``; every network object is pickled as
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with ``meta = {type, version, module_src,
class_name, state}`` and ``state`` the module's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, hooks,
``_init_args``, ``_init_kwargs`` and plain attributes, numpy ones included); keyword arguments are
``dnnlib.util.EasyDict``; tensors are pickled by torch itself.

``torch_utils`` and ``dnnlib`` are not installed, so stand-in modules with those names sit in ``sys.modules``
only while the pickle is written: pickle then names the globals exactly as NVIDIA's code makes it do.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

PERSISTENCE_VERSION = 6  # torch_utils.persistence._version of the official code


def _reconstruct_persistent_obj(meta):
    raise RuntimeError("stand-in of torch_utils.persistence._reconstruct_persistent_obj: for writing only")


class EasyDict(dict):
    """Stand-in of ``dnnlib.util.EasyDict``."""


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
EasyDict.__module__ = "dnnlib.util"


class Persistent:
    """A network object as ``@persistence.persistent_class`` pickles it."""

    def __init__(self, class_name: str, state: dict, module_src: str):
        self.meta = {
            "type": "class",
            "version": PERSISTENCE_VERSION,
            "module_src": module_src,
            "class_name": class_name,
            "state": state,
        }

    def __reduce__(self):
        return _reconstruct_persistent_obj, (self.meta,)


@contextlib.contextmanager
def _official_modules() -> Iterator[None]:
    """Register ``torch_utils.persistence`` and ``dnnlib.util`` stand-ins for the duration of a dump."""
    names = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
    clash = [name for name in names if name in sys.modules]
    if clash:
        raise RuntimeError(f"{clash} already imported: the stand-ins would hide them")
    modules = {name: types.ModuleType(name) for name in names}
    modules["torch_utils"].persistence = modules["torch_utils.persistence"]
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    modules["dnnlib"].util = modules["dnnlib.util"]
    modules["dnnlib.util"].EasyDict = EasyDict
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name in names:
            del sys.modules[name]


def _easy(value):
    return EasyDict({k: _easy(v) for k, v in value.items()}) if isinstance(value, dict) else value


def _plain_attributes(module: torch.nn.Module) -> dict:
    """The module's plain attributes, sizes as the numpy arrays the official modules store them as."""
    plain = (bool, int, float, str, np.generic)
    attributes = {}
    for name, value in vars(module).items():
        items = value if isinstance(value, list) else [value]
        if name.startswith("_") or not all(isinstance(item, plain) for item in items):
            continue  # e.g. sg3pipe's LayerSpec objects, which official modules do not have
        if name.endswith("size") and isinstance(value, int):
            value = np.broadcast_to(np.asarray(value), [2])  # official: self.size = np.broadcast_to(...)
        attributes[name] = value
    return attributes


def persistent_module(module: torch.nn.Module, module_src: str, init_kwargs: dict | None = None) -> Persistent:
    """``module`` and its submodules as persistent objects with the ``__dict__`` layout of torch modules."""
    state = {
        "training": module.training,
        "_parameters": OrderedDict(module._parameters),
        "_buffers": OrderedDict(module._buffers),  # None for absent 1-tap filters, as in real pickles
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(),
        "_forward_hooks": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(
            (name, None if child is None else persistent_module(child, module_src))
            for name, child in module._modules.items()
        ),
        **_plain_attributes(module),
        "_init_args": (),
        "_init_kwargs": _easy(init_kwargs or {}),
    }
    return Persistent(type(module).__name__, state, module_src)


class Discriminator(torch.nn.Module):
    """A few weights under ``D``, which the loader must leave alone."""

    def __init__(self):
        super().__init__()
        self.b4 = torch.nn.Conv2d(3, 4, 3)


def write_official_pickle(
    path: str | Path,
    G_ema: torch.nn.Module | None,
    *,
    init_kwargs: dict | None = None,
    module_src: str = "# source of training/networks_stylegan3.py\n",
    protocol: int = 4,
) -> Path:
    """Write a snapshot ``{G, D, G_ema, training_set_kwargs, augment_pipe}`` of ``G_ema`` as NVIDIA does.

    Args:
        G_ema: an sg3pipe ``Generator``; ``None`` writes a snapshot without ``G``/``G_ema`` (discriminator only).
        init_kwargs: the recorded constructor arguments; default ``G_ema.init_kwargs``.
        module_src: the "module source" stored in every ``meta``; a test puts code here that must never run.
        protocol: pickle protocol (Python 3.7 wrote 3 by default, 3.8+ write 4).
    """
    snapshot = {}
    if G_ema is not None:
        kwargs = G_ema.init_kwargs if init_kwargs is None else init_kwargs
        snapshot["G"] = persistent_module(G_ema, module_src, kwargs)
    snapshot["D"] = persistent_module(Discriminator(), module_src, {"c_dim": 0, "img_resolution": 32})
    if G_ema is not None:
        snapshot["G_ema"] = persistent_module(G_ema, module_src, kwargs)
    snapshot["training_set_kwargs"] = EasyDict(path="datasets/ffhq-32x32.zip", use_labels=False, xflip=True)
    snapshot["augment_pipe"] = None
    path = Path(path)
    with _official_modules(), open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=protocol)
    return path
