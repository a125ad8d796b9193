"""Per-frame Parquet tables: one row per source frame, provenance and array shapes in the metadata."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sg3pipe.io.atomic import atomic_path

METADATA_KEY = b"sg3pipe"


def fixed_size_list(values: np.ndarray) -> pa.FixedSizeListArray:
    """Store ``[N, ...]`` numbers as a float32 fixed-size list column of ``prod(...)`` values per row."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    width = int(np.prod(values.shape[1:]))
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), width)


def column_array(table: pd.DataFrame, column: str, shape: tuple[int, ...]) -> np.ndarray:
    """Read a fixed-size list column back as a float32 array ``[N, *shape]``."""
    return np.stack(table[column].to_numpy()).astype(np.float32).reshape((len(table),) + tuple(shape))


def write_table(path: str | os.PathLike, columns: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Write a table atomically with ``metadata`` (provenance, shapes) as JSON under the ``sg3pipe`` key.

    Args:
        columns: column name -> 1-D sequence, or an ``[N, ...]`` array stored as a fixed-size float32 list.
        metadata: JSON-serialisable dict, e.g. ``{"provenance": ..., "shapes": {"landmarks": [68, 2]}}``.
    """
    arrays = {}
    for name, values in columns.items():
        if isinstance(values, np.ndarray) and values.ndim > 1:
            arrays[name] = fixed_size_list(values)
        else:
            arrays[name] = pa.array(values)
    table = pa.table(arrays)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata, default=str).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_frame(path: str | os.PathLike, frame: pd.DataFrame, metadata: dict[str, Any]) -> None:
    """Write a pandas frame of 1-D columns with :func:`write_table` (one column per frame column)."""
    write_table(path, {name: frame[name].to_numpy() for name in frame.columns}, metadata)


def read_table(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a table written by :func:`write_table`; returns the frame and its metadata dict."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY, b"{}")
    return table.to_pandas(), json.loads(raw)
