"""Read NVIDIA's official StyleGAN3 network pickles without running anything they contain.

An official snapshot (``network-snapshot-*.pkl``, ``stylegan3-*.pkl``) is a plain pickle of a dict
``{G, D, G_ema, training_set_kwargs, augment_pipe}`` in which every network object is pickled as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``; ``meta`` carries the Python source of the
module that defined the class (``module_src``), which NVIDIA's loader executes (NVlabs/stylegan3
``torch_utils/persistence.py``; ``training/training_loop.py`` writes the snapshots).

Here the unpickler resolves only the handful of globals such files contain, each to a harmless stand-in,
and refuses every other global before anything is called. A persistent object becomes its ``meta`` dict;
its ``module_src`` stays an unused string. :func:`read_generator` then walks ``G_ema``'s state into the
constructor arguments and a flat state dict whose keys equal ``Generator.state_dict()`` keys.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
from collections import OrderedDict
from typing import BinaryIO

import numpy as np
import torch

# Positional order of the official Generator constructor, for a pickle that recorded positional arguments.
GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")


class OfficialPickleError(ValueError):
    """The pickle is readable but is not an official network pickle holding a generator."""


class ForbiddenGlobalError(OfficialPickleError):
    """The pickle asks for a global that official network pickles never contain."""

    def __init__(self, global_name: str):
        self.global_name = global_name
        super().__init__(
            f"refused to unpickle: it asks for the global '{global_name}', which official StyleGAN3 network "
            "pickles never contain (it is a different kind of pickle or has been tampered with); "
            "nothing in the file was run"
        )


class PersistentObject(dict):
    """The ``meta`` dict of a network object: ``type``, ``version``, ``module_src``, ``class_name``, ``state``."""


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
    # NVIDIA's version execs meta["module_src"] to rebuild the class; the weights only need meta["state"].
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise OfficialPickleError("a persistent object in it has no state dict")
    return PersistentObject(meta)


def load_torch_file(path, error, refusal: str, allowed_globals: tuple = (), mmap: bool = False):
    """``torch.load(path, weights_only=True)`` with only ``allowed_globals`` added, every failure one ``error``.

    Args:
        error: exception class called as ``error(path, problem)``.
        refusal: why a refused global is not needed, for the message ("... which REFUSAL").
        mmap: map the file's tensors instead of reading them (zip-format files only): for reading shapes.
    """
    import zipfile

    import torch

    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        name = refused_global(err)
        if name is None:
            raise error(path, f"is a corrupt torch file ({str(err).splitlines()[0]})") from None
        problem = f"refused to load: it asks for the global '{name}', which {refusal}; nothing in the file was run"
        raise error(path, problem) from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise error(path, f"is a truncated or corrupt torch file ({err})") from None


def refused_global(err: pickle.UnpicklingError) -> str | None:
    """The global named in torch.load(weights_only=True)'s refusal message, if that is why it failed."""
    match = re.search(r"GLOBAL ([\w.]+)", str(err))
    return match.group(1) if match else None


def _load_storage(data: bytes) -> torch.storage.TypedStorage:
    # torch pickles a storage as a legacy torch.save of it; torch's weights-only loader decodes that safely.
    try:
        storage = torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as err:
        name = refused_global(err)
        if name is None:
            raise
        raise ForbiddenGlobalError(name) from None
    if not isinstance(storage, (torch.storage.TypedStorage, torch.storage.UntypedStorage)):
        raise OfficialPickleError(f"a tensor storage in it decodes to {type(storage).__name__}, not a storage")
    return storage


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    # Backward hooks from a file would be callables run later during backward(): drop them.
    return torch._utils._rebuild_tensor_v2(
        storage, storage_offset, size, stride, requires_grad, OrderedDict(), metadata
    )


def _rebuild_parameter(data: torch.Tensor, requires_grad, backward_hooks, state=None) -> torch.Tensor:
    # Only the values are copied into sg3pipe's Generator, so a parameter is just its tensor (state and
    # hooks, which would set arbitrary attributes or run later, are dropped).
    return data


# numpy writes these under numpy.core (1.x) or numpy._core (2.x); take the functions from numpy's own
# reductions so neither (deprecated) module path needs importing.
_NP_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_NP_SCALAR = np.float64(0).__reduce__()[0]

ALLOWED_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _NP_SCALAR,
    ("numpy._core.multiarray", "scalar"): _NP_SCALAR,
    ("numpy.core.multiarray", "_reconstruct"): _NP_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NP_RECONSTRUCT,
    ("dnnlib.util", "EasyDict"): dict,
    ("builtins", "set"): set,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles official network pickles: only :data:`ALLOWED_GLOBALS` resolve, to harmless stand-ins."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(f"{module}.{name}") from None

    def persistent_load(self, pid):
        # Plain pickle never writes persistent ids; torch.save does, and its files go through torch.load.
        raise OfficialPickleError("it holds persistent ids, which plain network pickles never contain")


class _ArgumentsUnpickler(RestrictedUnpickler):
    """:class:`RestrictedUnpickler` that skips every tensor: storages and tensors unpickle as ``None``, so the
    recorded constructor arguments are read without decoding any weights."""

    def find_class(self, module: str, name: str):
        if (module, name) in (("torch.storage", "_load_from_bytes"), ("torch._utils", "_rebuild_tensor_v2")):
            return _skipped
        return super().find_class(module, name)


def _skipped(*args) -> None:
    return None


def load_network_pickle(file: BinaryIO) -> object:
    """Unpickle an official network pickle with :class:`RestrictedUnpickler`; network objects become
    :class:`PersistentObject` meta dicts."""
    with warnings.catch_warnings():
        # torch warns about TypedStorage on every tensor of a legacy storage; nothing for the user to do.
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        return RestrictedUnpickler(file).load()


def flatten_state(obj: PersistentObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """The parameters and persistent buffers of a network object and its submodules, by dotted name
    (the keys of ``module.state_dict()``); ``None`` entries are skipped."""
    state = obj["state"]
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    entries = [*(state.get("_parameters") or {}).items()]
    entries += [(name, t) for name, t in (state.get("_buffers") or {}).items() if name not in non_persistent]
    tensors = {}
    for name, tensor in entries:
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise OfficialPickleError(f"'{prefix}{name}' is a {type(tensor).__name__}, not a tensor")
        tensors[prefix + name] = tensor
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise OfficialPickleError(f"submodule '{prefix}{name}' is a {type(child).__name__}, not a network object")
        tensors.update(flatten_state(child, f"{prefix}{name}."))
    return tensors


def _plain(value):
    # numpy scalars in the recorded arguments would not survive JSON (sg3pipe's format stores them as JSON).
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def generator_arguments(obj: PersistentObject) -> dict:
    """The keyword arguments a network object was constructed with (``_init_args`` and ``_init_kwargs``)."""
    state = obj["state"]
    args = tuple(state.get("_init_args") or ())
    kwargs = dict(state.get("_init_kwargs") or {})
    if len(args) > len(GENERATOR_ARGS):
        raise OfficialPickleError(f"G_ema was built with {len(args)} positional arguments; a Generator takes 6")
    return _plain({**dict(zip(GENERATOR_ARGS, args, strict=False)), **kwargs})


def _describe(snapshot: object) -> str:
    if isinstance(snapshot, dict):
        return f"a pickle of a dict with keys {sorted(map(str, snapshot))} and no network object under 'G_ema'"
    return f"a pickle of a {type(snapshot).__name__}, not a dict of networks"


def _generator_object(snapshot: object) -> PersistentObject:
    g_ema = snapshot.get("G_ema") if isinstance(snapshot, dict) else None
    if not isinstance(g_ema, PersistentObject):
        raise OfficialPickleError(_describe(snapshot))
    return g_ema


def read_generator_arguments(file: BinaryIO) -> dict:
    """The constructor arguments of ``G_ema`` in an official network pickle, decoding none of its tensors
    (the file is still read through once). Raises as :func:`read_generator`."""
    return generator_arguments(_generator_object(_ArgumentsUnpickler(file).load()))


def read_generator(file: BinaryIO) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read ``G_ema`` from an official network pickle without executing any of its code.

    Returns:
        ``(init_kwargs, state_dict)``: the Generator's constructor arguments and its tensors by
        ``state_dict()`` name (float32 on the CPU as stored).

    Raises:
        ForbiddenGlobalError: the pickle asks for a global outside :data:`ALLOWED_GLOBALS`.
        OfficialPickleError: it unpickles, but holds no generator network under ``G_ema``.
    """
    g_ema = _generator_object(load_network_pickle(file))
    return generator_arguments(g_ema), flatten_state(g_ema)
