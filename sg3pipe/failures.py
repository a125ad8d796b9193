"""The run's failures table: every job that failed, with its reason, gathered from the failure records that
:func:`sg3pipe.scripting.rule_logging` leaves beside the logs of failed jobs (a job that later succeeds
removes its record). The workflow writes it after every run, successful or not (``results/failures.parquet``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd

from sg3pipe.io.atomic import atomic_path
from sg3pipe.io.html import html_table
from sg3pipe.io.tables import write_frame

COLUMNS = ("rule", "video", "error", "message", "log")
FAILURE_SUFFIX = ".failure.json"  # a failed job's record: its log path + this suffix


def collect_failures(log_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per failure record under ``log_dir``, sorted by rule and video.

    Returns:
        Columns ``rule``, ``video`` (the job's ``video`` wildcard; empty for model-level rules), ``error``
        (exception type), ``message`` (what went wrong and the fix), ``log`` (the job's log file).
    """
    rows = []
    for path in sorted(Path(log_dir).rglob(f"*{FAILURE_SUFFIX}")):
        record = json.loads(path.read_text())
        fields = {**record, "video": record.get("wildcards", {}).get("video")}
        rows.append({column: str(fields.get(column) or "") for column in COLUMNS})
    return pd.DataFrame(rows, columns=list(COLUMNS)).sort_values(["rule", "video"], ignore_index=True)


def write_failures(log_dir: str | os.PathLike, out_path: str | os.PathLike) -> pd.DataFrame:
    """Write :func:`collect_failures` of ``log_dir`` to the Parquet file ``out_path``, with a TSV (for a terminal)
    and an HTML page (for the report) beside it; returns the table."""
    table = collect_failures(log_dir)
    write_frame(out_path, table, {"log_dir": str(log_dir)})
    with atomic_path(Path(out_path).with_suffix(".tsv")) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    html_table(Path(out_path).with_suffix(".html"), table, "Failed jobs")
    return table


def report_failures(table: pd.DataFrame) -> None:
    """Print one line per failed job (rule, video, message, log) to stderr: the end of a run's output."""
    lines = [f"{len(table)} failed job(s), listed in results/failures.parquet:"]
    for row in table.itertuples():
        reason = row.message.splitlines()[0] if row.message else row.error
        lines.append(f"  {row.rule} {row.video}: {reason} ({row.log})")
    print("\n".join(lines), file=sys.stderr)
