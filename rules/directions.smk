# Model-level editing: directions of models.generator scored by models.scorer (shared by all videos). Library:
# sg3pipe.stages.directions. Outputs: results/directions/{generator}/ (samples, one .npy per direction,
# directions.parquet). rules/analysis.smk measures how cleanly they edit; rule render applies the edits to each video.

DIRECTIONS = f"results/directions/{generator_name()}"


rule direction_samples:
    """Sample, render and score latents in resumable chunks (kept in samples.chunks/ across interruptions)."""
    input:
        generator=model_path("generator"),
        scorer=scorer_spec()["path"],
    output:
        samples=f"{DIRECTIONS}/samples.parquet",
    log:
        "logs/directions/samples.log",
    benchmark:
        "logs/benchmarks/directions/samples.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=gpu_count(),
    params:
        directions=config["directions"],
        scorer=scorer_spec(),
        workdir=f"{DIRECTIONS}/samples.chunks",
        device=config["device"],
    script:
        "../scripts/direction_samples.py"


rule directions:
    """One W boundary (.npy, the official format) and one StyleSpace direction per scored attribute, the official
    boundaries of directions.pretrained, and StyleCLIP global directions when directions.styleclip is set."""
    input:
        samples=rules.direction_samples.output.samples,
        generator=model_path("generator"),  # renders StyleCLIP's channel moves when directions.styleclip is set
    output:
        table=f"{DIRECTIONS}/directions.parquet",
        html=report(f"{DIRECTIONS}/directions.html", caption="../report/directions.rst", category="Directions"),
    log:
        "logs/directions/directions.log",
    benchmark:
        "logs/benchmarks/directions/directions.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        directions=config["directions"],
        clip=workflow_path(config["directions"]["styleclip"]["clip"]) if config["directions"]["styleclip"] else None,
        device=config["device"],
    script:
        "../scripts/directions.py"
