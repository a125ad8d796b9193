"""What every Snakemake `script:` adapter does around its one library call: log to the rule's log file, use
the rule's threads, and record a failure's traceback in that log before re-raising it (so the job fails with
the error in its log). The library never imports Snakemake; scripts pass their `snakemake` object's parts."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def rule_logging(log_path: str | os.PathLike, threads: int | None = None, what: str = "job") -> Iterator[None]:
    """Send logging and stderr (tqdm's progress bars) to ``log_path``, set torch's thread count to
    ``threads``, and log any exception with its traceback as ``"{what} failed"`` before it propagates."""
    with open(log_path, "w") as log_file, contextlib.redirect_stderr(log_file):
        logging.basicConfig(stream=log_file, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
        if threads:
            torch.set_num_threads(int(threads))
        try:
            yield
        except Exception:
            logging.exception("%s failed", what)
            raise
