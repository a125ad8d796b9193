"""Snakemake adapter of rule `summary`: one row per video from the metrics tables."""

from sg3pipe.io.html import html_table
from sg3pipe.metrics.summary import write_summary
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    table = write_summary(list(snakemake.input.metrics), snakemake.output.table)
    html_table(snakemake.output.html, table, "Run summary: one row per video")
