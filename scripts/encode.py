"""Snakemake adapter of rule `encode`: frames.parquet + aligned.mkv -> latents.parquet."""

from sg3pipe.inversion import invert_video
from sg3pipe.scripting import job_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's `script:` directive

with job_logging(snakemake):
    invert_video(
        snakemake.input.table,
        snakemake.input.aligned,
        snakemake.output.table,
        config={"encode": snakemake.params.encode, "device": snakemake.params.device},
        model_file=snakemake.input.model,
        crops_video=snakemake.input.crops if snakemake.params.encode["render_with_transform"] else None,
    )
