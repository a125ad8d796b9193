"""sg3pipe's own model files: one safetensors file of a model's tensors, with JSON metadata that names the kind of
model, the format version, the model's constructor config and where it came from. No pickle is involved, so
reading a file never runs code from it.

Metadata keys: ``sg3pipe_format`` (the kind: ``generator``, ``encoder``, ``synth_classifier``),
``format_version``, ``config`` (JSON), ``sg3pipe_version``, and when given ``source`` (JSON: the file the model
was converted or tuned from) and ``extra`` (JSON: the kind's own records, e.g. a classifier's accuracy).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.errors import ModelFileError

FORMAT_KEY = "sg3pipe_format"  # the metadata key that marks sg3pipe's model files and names their kind


def write_model_file(
    path: str | os.PathLike,
    kind: str,
    version: int,
    config: Mapping,
    tensors: Mapping[str, torch.Tensor],
    source: Mapping | None = None,
    extra: Mapping | None = None,
) -> Path:
    """Write ``tensors`` (moved to the CPU, made contiguous) with the metadata of the module docstring,
    atomically. ``config`` must be JSON-serialisable. Returns the path."""
    from sg3pipe import __version__

    metadata = {
        FORMAT_KEY: kind,
        "format_version": str(version),
        "config": json.dumps(dict(config)),
        "sg3pipe_version": __version__,
    }
    if source:
        metadata["source"] = json.dumps(dict(source))
    if extra:
        metadata["extra"] = json.dumps(dict(extra))
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        safetensors.torch.save_file(tensors, tmp, metadata=metadata)
    return path


def read_model_header(
    path: str | os.PathLike, kind: str, version: int, error: type[ModelFileError], expected: str
) -> dict:
    """The metadata of an sg3pipe model file of ``kind``, read without its tensors.

    Args:
        version: the newest format version this sg3pipe reads.
        error: the :class:`ModelFileError` subclass raised for an unusable file; ``expected`` says what a usable
            one is.

    Returns:
        ``{"config": dict, "version": int, "source": dict or None, "extra": dict}``.

    Raises:
        error: the file is not a readable safetensors file, is not an sg3pipe ``kind`` file, or was written by a
            newer format version.
    """
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (safetensors.SafetensorError, OSError) as err:
        raise error(path, f"is a truncated or corrupt safetensors file ({err})", expected) from None
    return _header(path, metadata, kind, version, error, expected)


def read_model_file(
    path: str | os.PathLike, kind: str, version: int, error: type[ModelFileError], expected: str
) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(header, tensors)`` of an sg3pipe model file of ``kind`` (:func:`read_model_header`), tensors on the CPU."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (safetensors.SafetensorError, OSError) as err:
        raise error(path, f"is a truncated or corrupt safetensors file ({err})", expected) from None
    return _header(path, metadata, kind, version, error, expected), tensors


def _header(path, metadata: dict, kind: str, version: int, error: type[ModelFileError], expected: str) -> dict:
    found = metadata.get(FORMAT_KEY)
    if found != kind or "config" not in metadata:
        what = (
            f"an sg3pipe {found} file, not {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
            if found and found != kind
            else f"a safetensors file without sg3pipe's metadata (metadata keys: {sorted(metadata)})"
        )
        raise error(path, f"is {what}", f"{expected}, with '{FORMAT_KEY}': '{kind}' and 'config'")
    try:
        header = {
            "config": json.loads(metadata["config"]),
            "version": int(metadata.get("format_version", 0)),
            "source": json.loads(metadata["source"]) if "source" in metadata else None,
            "extra": json.loads(metadata.get("extra", "{}")),
        }
    except ValueError as err:
        raise error(path, f"has unreadable sg3pipe metadata ({err})", expected) from None
    if header["version"] > version:
        problem = f"was written by a newer sg3pipe (format version {header['version']}; this one reads {version})"
        raise error(path, problem, f"{expected}; upgrade sg3pipe to read it")
    return header
