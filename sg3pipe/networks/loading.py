"""Load a StyleGAN3 generator from any of the three files users have, and save sg3pipe's own format.

* ``nvidia-pkl``: NVIDIA's official network pickles; ``G_ema`` is read with a restricted unpickler that never
  runs code from the file (``sg3pipe.io.official_pickle``).
* ``editing-pt``: the stylegan3-editing repo's ``.pt`` files, a bare ``Generator.state_dict()``; the config
  is inferred from the tensor shapes and layer names (:func:`infer_config`).
* ``sg3pipe``: one safetensors file, weights plus the config as JSON in its metadata; no pickle at all.

The format is told from the file's first bytes, not its extension. Every unusable file raises one
:class:`GeneratorFileError` that names the file, says what it is and what was expected.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from sg3pipe.io import official_pickle
from sg3pipe.io.errors import ModelFileError
from sg3pipe.io.model_files import read_model_file, read_model_header, write_model_file
from sg3pipe.networks.filters import synthesis_schedule
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.provenance import file_sha256

EXPECTED = (
    "an official NVIDIA StyleGAN3 network pickle (.pkl), a stylegan3-editing generator state dict (.pt) "
    "or an sg3pipe generator (.safetensors, written by `sg3pipe convert`)"
)
FORMAT_NAME = "generator"
FORMAT_VERSION = 1  # bump when the meaning of the stored config or tensors changes
SG3PIPE_EXPECTED = "an sg3pipe generator written by `sg3pipe convert` or save_generator"

# torch.save's pre-1.6 (non-zip) format begins with this pickled magic number.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
PICKLE_SUFFIXES = (".pkl", ".pickle")
TEXT = "a text file"
# A damaged pickle stream fails in pickle itself or in the numpy/torch rebuild calls it feeds bad arguments.
_BROKEN_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    RuntimeError,
)
_LAYER_NAME = re.compile(r"synthesis\.(L(\d+)_(\d+)_(\d+))\.weight")
_MAPPING_FC = re.compile(r"mapping\.fc(\d+)\.weight")


class GeneratorFileError(ModelFileError):
    """A generator file cannot be used: empty, truncated, of another type, or its weights do not fit."""

    kind = "generator"
    expected = EXPECTED


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Load a generator from an official ``.pkl``, an editing-repo ``.pt`` or an sg3pipe ``.safetensors`` file.

    Returns:
        The :class:`Generator` on ``device`` in eval mode (parameters trainable), with
        ``G.source = {"path", "sha256", "format"}``; ``format`` is ``"nvidia-pkl"``, ``"editing-pt"`` or
        ``"sg3pipe"``.

    Raises:
        FileNotFoundError: no file at ``path``.
        GeneratorFileError: the file is empty, truncated, not a generator, or its weights do not fit its config.
    """
    path = _existing_file(path)
    fmt, head = sniff_format(path)
    readers = {"nvidia-pkl": _read_official_pickle, "editing-pt": _read_state_dict_file, "sg3pipe": _read_sg3pipe}
    config, state_dict = readers[fmt](path, head)
    G = _build(path, config, state_dict)
    G.source = {"path": str(path), "sha256": file_sha256(path), "format": fmt}
    return G.to(device).eval()


def read_generator_config(path: str | os.PathLike) -> dict:
    """The constructor arguments of the generator in a file (``img_resolution``, ``w_dim``, ...), without
    loading its weights: an sg3pipe file's metadata, an official pickle's recorded arguments (its tensors are
    skipped, though the file is read through once), a state dict's shapes (memory-mapped). Cheap enough to run
    when the workflow is parsed. Raises as :func:`load_generator`."""
    path = _existing_file(path)
    fmt, head = sniff_format(path)
    if fmt == "sg3pipe":
        return _read_sg3pipe_metadata(path)
    if fmt == "editing-pt":
        return _read_state_dict_file(path, head, shapes_only=True)[0]
    with _pickle_errors(path, head), open(path, "rb") as f:
        return official_pickle.read_generator_arguments(f)


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"generator file {path} does not exist; set config `models.generator` to the path of {EXPECTED}"
        )
    if not path.is_file():
        raise GeneratorFileError(path, "is a directory, not a file")
    return path


def save_generator(G: Generator, path: str | os.PathLike) -> Path:
    """Write ``G`` in sg3pipe's format (:mod:`sg3pipe.io.model_files`): its ``state_dict()``, its constructor
    arguments as the config and, when ``G`` was loaded from a file, that file's ``G.source``. Written atomically;
    returns the path."""
    return write_model_file(
        path, FORMAT_NAME, FORMAT_VERSION, G.init_kwargs, G.state_dict(), source=getattr(G, "source", None)
    )


def sniff_format(path: Path) -> tuple[str, bytes]:
    """Tell a generator file's format from its first bytes: ``(format, first 64 bytes)``."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        raise GeneratorFileError(path, "is empty (0 bytes)")
    if head.startswith(b"PK\x03\x04") or head.startswith(_LEGACY_TORCH_MAGIC):
        return "editing-pt", head
    if _looks_like_safetensors(head):
        return "sg3pipe", head
    # Official pickles use protocol 3 or 4. A .pkl of another kind (protocol 0 is text) still goes through
    # the restricted unpickler, which refuses any code in it by name.
    kind = _content_type(head)
    if (head[0] == 0x80 and 2 <= head[1] <= 5) or (path.suffix.lower() in PICKLE_SUFFIXES and kind in (None, TEXT)):
        return "nvidia-pkl", head
    raise GeneratorFileError(path, f"is {kind or 'binary data of an unknown type'}")


def _looks_like_safetensors(head: bytes) -> bool:
    # safetensors: an 8-byte little-endian header length (safetensors caps it at 100 MB), then the JSON header.
    return len(head) > 8 and 2 <= int.from_bytes(head[:8], "little") <= 100_000_000 and head[8:9] == b"{"


def _content_type(head: bytes) -> str | None:
    """A few common file types that end up renamed to .pkl/.pt by mistake; ``None`` if unrecognised."""
    signatures = {
        b"\x89PNG": "a PNG image",
        b"\xff\xd8\xff": "a JPEG image",
        b"\x1f\x8b": "a gzip archive",
        b"%PDF": "a PDF document",
    }
    for signature, name in signatures.items():
        if head.startswith(signature):
            return name
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not merely a character cut off at the end of the sample
            return None
    return None if b"\x00" in head else TEXT


def _read_official_pickle(path: Path, head: bytes) -> tuple[dict, dict[str, torch.Tensor]]:
    with _pickle_errors(path, head), open(path, "rb") as f:
        return official_pickle.read_generator(f)


@contextlib.contextmanager
def _pickle_errors(path: Path, head: bytes) -> Iterator[None]:
    """Every failure of reading an official pickle as one :class:`GeneratorFileError`."""
    try:
        yield
    except official_pickle.ForbiddenGlobalError as err:
        raise GeneratorFileError(path, str(err), "an official NVIDIA StyleGAN3 network pickle") from None
    except official_pickle.OfficialPickleError as err:
        raise GeneratorFileError(path, f"is {err}") from None
    except _BROKEN_PICKLE_ERRORS as err:
        what = "a truncated or corrupt pickle" if head[0] == 0x80 else (_content_type(head) or "not a pickle")
        raise GeneratorFileError(path, f"is {what} ({type(err).__name__}: {err})") from None


def _read_state_dict_file(path: Path, head: bytes, shapes_only: bool = False) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config, state_dict)`` of an editing-repo file; with ``shapes_only`` a zip-format file's tensors are
    memory-mapped, not read (enough for the config)."""
    obj = official_pickle.load_torch_file(
        path,
        GeneratorFileError,
        "torch.load(weights_only=True) does not allow in a state dict",
        mmap=shapes_only and head.startswith(b"PK"),
    )
    state_dict = _unwrap_state_dict(obj)
    if state_dict is None:
        raise GeneratorFileError(path, f"is a torch file holding {_describe_object(obj)}, not a generator state dict")
    state_dict = _drop_batched_transform(state_dict)
    try:
        return infer_config(state_dict), state_dict
    except ValueError as err:
        raise GeneratorFileError(path, f"is a state dict whose StyleGAN3 config cannot be inferred: {err}") from None


def _is_generator_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and all(isinstance(t, torch.Tensor) for t in obj.values())
        and any(str(k).startswith("mapping.") for k in obj)
        and any(str(k).startswith("synthesis.") for k in obj)
    )


def _unwrap_state_dict(obj: object) -> dict[str, torch.Tensor] | None:
    """The generator state dict in ``obj``: ``obj`` itself or ``obj["G_ema"]`` / ``obj["state_dict"]``."""
    candidates = [obj] + [obj.get(key) for key in ("G_ema", "state_dict") if isinstance(obj, Mapping)]
    return next((dict(c) for c in candidates if _is_generator_state_dict(c)), None)


def _describe_object(obj: object) -> str:
    if isinstance(obj, Mapping):
        keys = sorted(map(str, obj))
        return f"a dict with keys {keys[:8]}{' ...' if len(keys) > 8 else ''}"
    return f"a {type(obj).__name__}"


def _drop_batched_transform(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # PTI-tuned files keep the last batch's transforms ([B, 3, 3]) in this buffer; sg3pipe passes transforms
    # as arguments, so the buffer goes back to the identity.
    key = "synthesis.input.transform"
    if key in state_dict and state_dict[key].ndim == 3:
        state_dict = {**state_dict, key: torch.eye(3)}
    return state_dict


def infer_config(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """The Generator constructor arguments of a bare state dict, from its tensor shapes and layer names.

    ``z_dim``/``w_dim``/``c_dim`` and the mapping depth come from ``mapping.*``, the kernel size from
    ``synthesis.L0_*.weight``, R vs T from whether a ``down_filter`` is 2-D, resolution and colour channels from
    the last ``L{i}_{size}_{channels}`` name. ``channel_max`` is the first layer's channel count and
    ``channel_base`` the smallest power of two whose schedule reproduces every layer name: together they
    build exactly this network (a file trained with a larger, unreached ``channel_max`` gets the equivalent
    smaller one). Only shapes are read, so tensors on the ``meta`` device work.

    Raises:
        ValueError: the names or shapes are not those of a StyleGAN3 generator.
    """
    fcs = sorted(int(m.group(1)) for key in state_dict if (m := _MAPPING_FC.fullmatch(key)))
    if not fcs or fcs != list(range(len(fcs))):
        raise ValueError(f"mapping layers mapping.fc0..N are missing or not numbered 0..N (found fc{fcs})")
    w_dim, fc0_in = state_dict["mapping.fc0.weight"].shape
    embed = state_dict.get("mapping.embed.weight")
    c_dim = 0 if embed is None else int(embed.shape[1])
    layers = sorted((int(m.group(2)), m.group(1)) for key in state_dict if (m := _LAYER_NAME.fullmatch(key)))
    if not layers or [i for i, _ in layers] != list(range(len(layers))):
        raise ValueError("synthesis layers synthesis.L{i}_{size}_{channels} are missing or not numbered 0..N")
    names = [name for _, name in layers]
    _, img_resolution, img_channels = map(int, names[-1][1:].split("_"))
    channel_max = int(names[0].split("_")[2])
    config = {
        "z_dim": int(fc0_in) - (int(w_dim) if c_dim else 0),
        "c_dim": c_dim,
        "w_dim": int(w_dim),
        "img_resolution": img_resolution,
        "img_channels": img_channels,
        "mapping_kwargs": {"num_layers": len(fcs)},
        "channel_base": _channel_base(names, img_resolution, img_channels, channel_max),
        "channel_max": channel_max,
    }
    # Arguments at their defaults are left out, as in the official pickles' recorded arguments.
    if len(names) != 15:
        config["num_layers"] = len(names) - 1
    conv_kernel = int(state_dict[f"synthesis.{names[0]}.weight"].shape[-1])
    if conv_kernel != 3:
        config["conv_kernel"] = conv_kernel
    if any(key.endswith(".down_filter") and t.ndim == 2 for key, t in state_dict.items()):
        config["use_radial_filters"] = True
    return config


def _channel_base(names: list[str], img_resolution: int, img_channels: int, channel_max: int) -> int:
    """The smallest power-of-two ``channel_base`` whose schedule gives exactly these layer names."""
    for exponent in range(4, 25):
        _, specs = synthesis_schedule(img_resolution, img_channels, 2**exponent, channel_max, len(names) - 1)
        if [spec.name for spec in specs] == names:
            return 2**exponent
    raise ValueError(
        f"the layer names {names} follow the StyleGAN3 schedule for no power-of-two channel_base "
        f"(channel_max {channel_max}, resolution {img_resolution})"
    )


def _read_sg3pipe(path: Path, head: bytes) -> tuple[dict, dict[str, torch.Tensor]]:
    header, state_dict = read_model_file(path, FORMAT_NAME, FORMAT_VERSION, GeneratorFileError, SG3PIPE_EXPECTED)
    return header["config"], state_dict


def _read_sg3pipe_metadata(path: Path) -> dict:
    return read_model_header(path, FORMAT_NAME, FORMAT_VERSION, GeneratorFileError, SG3PIPE_EXPECTED)["config"]


def _build(path: Path, config: dict, state_dict: dict[str, torch.Tensor]) -> Generator:
    """A Generator built from ``config`` holding ``state_dict``, or one error saying how they disagree."""
    try:
        # Building draws random initial weights; loading must not change what the caller's next randn returns.
        with torch.random.fork_rng(devices=[]):
            G = Generator(**config)
    except (TypeError, ValueError, KeyError, IndexError) as err:
        problem = f"has a config that is not a StyleGAN3 generator's ({err}): {config}"
        raise GeneratorFileError(path, problem, "the constructor arguments of a StyleGAN3 Generator") from None
    mismatch = _state_dict_mismatch(G.state_dict(), state_dict)
    if mismatch:
        problem = f"has weights that do not fit its config {config}: {mismatch}"
        raise GeneratorFileError(path, problem, "the tensor names and shapes of a Generator with that config")
    G.load_state_dict(state_dict)
    return G


def _state_dict_mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str:
    """Missing, unexpected and wrongly shaped entries, a few of each; empty if ``found`` fits."""

    def some(items: list[str]) -> str:
        return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")

    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [
        f"{key} {list(found[key].shape)} (needs {list(t.shape)})"
        for key, t in expected.items()
        if key in found and found[key].shape != t.shape
    ]
    parts = [
        f"{what} {some(items)}"
        for what, items in [("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)]
        if items
    ]
    return "; ".join(parts)
