"""The workflow's stages: each rule's job as one library function, callable without Snakemake.

One module per rule file (``rules/{family}.smk`` -> ``sg3pipe.stages.{family}``), one public function per rule,
named after it, with one signature::

    stage(inputs: dict, outputs: dict, config: dict, threads: int = 1) -> None

``inputs`` and ``outputs`` map the rule's input and output names to paths (a list where the rule names a list of
files); ``config`` holds the config sections the rule passes as its ``params`` (e.g. ``{"pti": ..., "render": ...,
"device": "auto"}``) and the paths the rule computes (work folders). A stage reads only the sections it is given,
and makes every decision about them. ``scripts/{rule}.py`` calls its stage through
:func:`sg3pipe.scripting.run_stage`, which adds the job's logging; the stages never import Snakemake.

Stages import the library inside their functions: a rule file imports its stage module when the workflow is
parsed (for what a config section adds to the rule, e.g. :func:`sg3pipe.stages.render.pti_outputs`), and parsing
must not load every model's code for each of a cluster's jobs.
"""

from __future__ import annotations


def scorer_kinds_registered() -> None:
    """Register the scorer kinds of the plug-ins the workflow ships (the synthetic world's ``synthetic``), so
    that a config's ``models.scorer`` may name them."""
    import sg3pipe.synth  # noqa: F401 - importing it registers its kinds
