# sg3pipe: invert, edit and re-render face videos with StyleGAN3.
# This file is the table of contents: configuration, validation, one rule file per stage, and `all`.
from snakemake.utils import min_version, validate

from sg3pipe.settings import load_schema, typed_command_line_values
from sg3pipe.workflow_config import resolve_config

min_version("9.0")


configfile: "config/config.yaml"


# Nested --config values (e.g. pti='{keep_generator: true}') arrive as strings; give them the schema's types.
typed_command_line_values(config, load_schema(f"{workflow.basedir}/config/schemas/config.schema.yaml"))
validate(config, "config/schemas/config.schema.yaml")
# What the schema cannot check: settings against the model files' headers and against each other (align.size
# follows the generator). Each problem is one error now, not in a job hours later.
resolve_config(config, workflow.basedir)


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/frames.smk"
include: "rules/encode.smk"
include: "rules/preview.smk"
include: "rules/synth.smk"
include: "rules/train_encoder.smk"
include: "rules/directions.smk"
include: "rules/analysis.smk"
include: "rules/render.smk"


rule all:
    input:
        rules.generator_preview.output,
        rules.directions.output.table,
        rules.flip_table.output.table,
        rules.dci.output.table,
        rules.rotation_control.output.table,
        rules.summary.output.table,
        rules.failures.output.table,


# After every run, successful or not: results/failures.parquet (.tsv, .html) lists each failed job with its reason.
onsuccess:
    write_failures(rules.failures.params.logs, rules.failures.output.table)


onerror:
    report_failures(write_failures(rules.failures.params.logs, rules.failures.output.table))
