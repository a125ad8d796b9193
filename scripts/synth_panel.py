"""Snakemake adapter: the rule of this file's name runs its stage (sg3pipe.stages) with the job's logging."""

from sg3pipe.scripting import run_stage
from sg3pipe.stages.synth import synth_panel

run_stage(globals()["snakemake"], synth_panel)
