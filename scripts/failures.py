"""Snakemake adapter of rule `failures`: the failures table (Parquet, TSV, HTML) from the failure records under
the logs folder."""

from sg3pipe.failures import write_failures
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    write_failures(snakemake.params.logs, snakemake.output.table)
