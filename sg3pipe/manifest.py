"""The manifest: the TSV that lists the videos to process (config key ``samples``), read and validated.

A header row names the columns, then one row per video. Columns (their schema, with descriptions, is
``config/schemas/samples.schema.yaml``): ``id`` and ``path`` are required; ``start_s``, ``end_s``,
``max_frames``, ``landmarks``, ``face_track`` and ``truth`` are optional per-video options, empty meaning "not set";
any other column is kept as text. Relative paths start at the manifest's folder. Files need not exist when
the manifest is read: a missing video fails its own job, and the other videos go on.
"""

from __future__ import annotations

import csv
import functools
import math
import os
import re
from pathlib import Path

import jsonschema
import pandas as pd

from sg3pipe.settings import load_schema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config" / "schemas" / "samples.schema.yaml"
# Columns whose cells are file paths, resolved against the manifest's folder.
PATH_COLUMNS = ("path", "landmarks", "face_track", "truth")
# The columns every loaded manifest has, in this order, before the file's other columns.
KNOWN_COLUMNS = ("id", "path", "start_s", "end_s", "max_frames", "landmarks", "face_track", "truth")


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the manifest, the line and the column."""


def load_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read the manifest TSV at ``path`` and validate every row.

    Returns:
        One row per video, in file order, indexed by id. Columns: ``id``; ``path``, ``landmarks``,
        ``face_track``, ``truth`` (absolute paths; None when not set); ``start_s``, ``end_s`` (float seconds, NaN when
        not set); ``max_frames`` (pandas Int64, <NA> when not set); then the file's other columns (text,
        None when empty).

    Raises:
        ManifestError: the file is missing or empty, lacks a required column, or a cell is invalid (the
            message names the manifest, the line and the column, and says what is allowed).
    """
    manifest = Path(path)
    header, rows = _read_rows(manifest)
    extra_columns = [column for column in header if column not in KNOWN_COLUMNS]
    records, first_line = [], {}
    for line, cells in rows:
        record = _validated(manifest, line, cells)
        if record["id"] in first_line:
            raise ManifestError(
                f"{_where(manifest, line, record['id'], 'id')}: the id is already used on line "
                f"{first_line[record['id']]}; give every video its own id"
            )
        first_line[record["id"]] = line
        records.append(record)
    table = pd.DataFrame.from_records(records, columns=[*KNOWN_COLUMNS, *extra_columns])
    table = table.astype({"start_s": "float64", "end_s": "float64", "max_frames": "Int64"})
    for column in table.columns.drop(["start_s", "end_s", "max_frames"]):
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    table.index = list(table["id"])
    return table


def id_pattern() -> str:
    """The regular expression a video id matches (the schema's ``id`` pattern, without its anchors): the
    workflow's wildcard constraint on ``{video}``."""
    return _schema()["properties"]["id"]["pattern"].removeprefix("^").removesuffix("$")


@functools.cache
def _schema() -> dict:
    return load_schema(SCHEMA_PATH)


def _read_rows(manifest: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the ``(line number, {column: stripped cell})`` of each non-blank row."""
    if not manifest.is_file():
        raise ManifestError(f"manifest {manifest} does not exist: write a TSV with columns `id` and `path`")
    with open(manifest, newline="", encoding="utf-8-sig") as file:  # -sig: spreadsheets write a BOM
        reader = csv.reader(file, delimiter="\t")
        header = [column.strip() for column in next(reader, [])]
        rows = [(reader.line_num, cells) for cells in reader if any(cell.strip() for cell in cells)]
    _check_header(manifest, header)
    for line, cells in rows:
        if len(cells) > len(header):
            raise ManifestError(
                f"manifest {manifest}, line {line}: {len(cells)} cells but the header names "
                f"{len(header)} columns; name every column in the header row"
            )
    return header, [(line, {c: v.strip() for c, v in zip(header, cells, strict=False)}) for line, cells in rows]


def _check_header(manifest: Path, header: list[str]) -> None:
    missing = [column for column in ("id", "path") if column not in header]
    if missing:
        found = ", ".join(repr(column) for column in header) or "none"
        raise ManifestError(
            f"manifest {manifest}: no column {' or '.join(missing)} (columns found: {found}); the first row "
            "names the columns, separated by tabs (not spaces), at least `id` and `path`"
        )
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise ManifestError(f"manifest {manifest}: column {', '.join(repeated)} appears twice in the header")


def _validated(manifest: Path, line: int, cells: dict[str, str]) -> dict:
    """One row as typed values (see ``load_manifest``), checked against the schema."""
    properties = _schema()["properties"]
    values = {c: _typed(v, properties.get(c, {}).get("type")) for c, v in cells.items() if v}
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_schema()).iter_errors(values))
    if error is not None:
        if error.validator == "required":
            column = next(c for c in error.validator_value if c not in values)
            problem = "is empty"
        else:
            column, problem = error.path[0], error.message
        hint = properties[column]["description"].strip()
        raise ManifestError(f"{_where(manifest, line, values.get('id'), column)}: {problem} ({hint})")
    if "start_s" in values and "end_s" in values and values["end_s"] <= values["start_s"]:
        raise ManifestError(
            f"{_where(manifest, line, values['id'], 'end_s')}: end_s={values['end_s']} is not after "
            f"start_s={values['start_s']}"
        )
    for column in PATH_COLUMNS:
        if column in values:
            # abspath, not resolve: keep the user's symlinks (datasets are often linked in).
            values[column] = os.path.abspath(manifest.parent / Path(values[column]).expanduser())
    return values


def _typed(text: str, json_type: str | None) -> object:
    """``text`` as the schema's number or integer; other text stays text, for the schema to report."""
    if json_type == "integer" and re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if json_type == "number":
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    return text


def _where(manifest: Path, line: int, video_id: str | None, column: str) -> str:
    named = f" (id {video_id})" if video_id else ""
    return f"manifest {manifest}, line {line}{named}, column {column}"
