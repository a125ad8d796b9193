"""What produced a file: sg3pipe version, config values and the SHA-256 of every model file used."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, cached per (path, size, mtime) so repeated calls are free."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(config: dict[str, Any] | None = None, models: dict[str, str | os.PathLike] | None = None) -> dict:
    """A JSON-serialisable record: ``{"sg3pipe_version", "config", "models": {name: {"path", "sha256"}}}``."""
    from sg3pipe import __version__

    return {
        "sg3pipe_version": __version__,
        "config": config or {},
        "models": {name: {"path": str(p), "sha256": file_sha256(p)} for name, p in (models or {}).items()},
    }
