"""Snakemake adapter: the rule of this file's name runs its stage (sg3pipe.stages) with the job's logging."""

from sg3pipe.scripting import run_stage
from sg3pipe.stages.render import failures

run_stage(globals()["snakemake"], failures)
