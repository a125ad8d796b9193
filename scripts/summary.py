"""Snakemake adapter of rule `summary`: one row per video from the metrics tables."""

from sg3pipe.metrics.summary import write_summary
from sg3pipe.scripting import rule_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with rule_logging(snakemake.log[0], snakemake.threads, "rule summary"):
    write_summary(list(snakemake.input.metrics), snakemake.output.table)
