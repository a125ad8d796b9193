"""What every Snakemake `script:` adapter does around its library call: log to the job's log file, use the
job's threads, and, when the job fails, log the traceback and leave a failure record beside the log (read by
:mod:`sg3pipe.failures` into the run's failures table) before re-raising, so the job fails with the error in its
log. The library never imports Snakemake: adapters pass their `snakemake` object, read here by attribute."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from sg3pipe.failures import FAILURE_SUFFIX


def failure_record_path(log_path: str | os.PathLike) -> Path:
    """Where the failure record of the job logging to ``log_path`` goes."""
    return Path(str(log_path) + FAILURE_SUFFIX)


@contextlib.contextmanager
def rule_logging(
    log_path: str | os.PathLike, threads: int | None = None, rule: str = "job", wildcards: dict | None = None
) -> Iterator[None]:
    """Send logging and stderr (tqdm's progress bars) to ``log_path`` and set torch's thread count to
    ``threads``. A stale failure record of the same job is removed on entry; an exception is logged with its
    traceback as ``"rule {rule} failed"`` and recorded as JSON (rule, wildcards, error type and message, log)
    in :func:`failure_record_path` before it propagates."""
    record_path = failure_record_path(log_path)
    record_path.unlink(missing_ok=True)
    with open(log_path, "w") as log_file, contextlib.redirect_stderr(log_file):
        logging.basicConfig(stream=log_file, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
        if threads:
            torch.set_num_threads(int(threads))
        try:
            yield
        except Exception as error:
            logging.exception("rule %s failed", rule)
            record = {
                "rule": rule,
                "wildcards": dict(wildcards or {}),
                "error": type(error).__name__,
                "message": str(error),
                "log": str(log_path),
            }
            record_path.write_text(json.dumps(record, indent=1))
            raise


def job_logging(job) -> contextlib.AbstractContextManager[None]:
    """:func:`rule_logging` for a Snakemake job object (a `script:`'s ``snakemake``): its first log file,
    threads, rule name and wildcards."""
    return rule_logging(job.log[0], job.threads, job.rule, dict(job.wildcards.items()))


def run_stage(job, stage: Callable[[dict, dict, dict, int], None]) -> None:
    """Run a stage function (:mod:`sg3pipe.stages`) for a Snakemake job object inside :func:`job_logging`: the
    job's named inputs and outputs as plain paths (a list for a list of files), its params as the config, its
    threads."""
    with job_logging(job):
        stage(_named(job.input), _named(job.output), _named(job.params), int(job.threads))


def _named(items) -> dict:
    """A Snakemake named list as a dict: name -> value, a list of strings for a name that holds several files."""
    return {name: value if isinstance(value, (str, int, float, dict, type(None))) else list(value)
            for name, value in items.items()}  # fmt: skip
