# Stage 3 of the per-video chain: temporal smoothing of the latents and transforms. Library: sg3pipe.temporal
# (smooth_video). Output per video: results/{video}/smoothed.parquet (one row per row of latents.parquet).


rule smooth:
    """Fine rows averaged over the video, then the configured temporal filter on latents and on the transforms'
    parameters; every frame keeps its row (unusable ones NaN). Plots the trajectories (with the truth when the
    manifest names a ground-truth table)."""
    input:
        unpack(truth_input),
        frames="results/{video}/frames.parquet",
        latents="results/{video}/latents.parquet",
    output:
        table="results/{video}/smoothed.parquet",
        trajectory=report(
            "results/{video}/trajectory.png",
            caption="../report/trajectory.rst",
            category="Videos",
            subcategory="{video}",
            labels={"video": "{video}", "figure": "transform trajectory"},
        ),
    log:
        "logs/smooth/{video}.log",
    benchmark:
        "benchmarks/out/smooth/{video}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        smooth=config["smooth"],
    script:
        "../scripts/smooth.py"
