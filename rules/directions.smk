# Model-level editing: directions of models.generator scored by models.scorer (shared by all videos), and how
# cleanly they edit. Library: sg3pipe.editing. Outputs: results/directions/{generator}/ (samples, one .npy per
# direction, directions.parquet), results/analysis/ (flips, DCI, rotation control). Rule render applies the
# edits to each video.

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
        settings=config["directions"],
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
        settings=config["directions"],
        clip=workflow_path(config["directions"]["styleclip"]["clip"]) if config["directions"]["styleclip"] else None,
        outdir=lambda wildcards, output: str(Path(output.table).parent),
        device=config["device"],
    script:
        "../scripts/directions.py"


rule flip_table:
    """The share of held-out samples whose decision on each attribute each direction's edit changes."""
    input:
        generator=model_path("generator"),
        scorer=scorer_spec()["path"],
        directions=rules.directions.output.table,
    output:
        table="results/analysis/flips.parquet",
        text="results/analysis/flips.txt",
        html=report("results/analysis/flips.html", caption="../report/flips.rst", category="Directions"),
    log:
        "logs/analysis/flips.log",
    benchmark:
        "logs/benchmarks/analysis/flips.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpu_count(),
    params:
        analysis=config["analysis"],
        settings=config["directions"],
        scorer=scorer_spec(),
        device=config["device"],
    script:
        "../scripts/flip_table.py"


rule dci:
    """The paper's disentanglement table: DCI of W, W+ (encoder inversions, when models.encoder is set) and S."""
    input:
        samples=rules.direction_samples.output.samples,
        generator=model_path("generator"),
        encoder=lambda wildcards: model_path("encoder") if config["models"].get("encoder") else [],
    output:
        table="results/analysis/dci.parquet",
        text="results/analysis/dci.txt",
        html=report("results/analysis/dci.html", caption="../report/dci.rst", category="Directions"),
    log:
        "logs/analysis/dci.log",
    benchmark:
        "logs/benchmarks/analysis/dci.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        analysis=config["analysis"],
        settings=config["directions"],
        device=config["device"],
    script:
        "../scripts/dci.py"


rule rotation_control:
    """The paper's rotation-control analysis: rows 0, 1 and 2.. of W+ swapped for another latent's, and the
    change of pose (landmarks of the renders; the input layer's Fourier transform) and of identity each gives."""
    input:
        generator=model_path("generator"),
    output:
        table="results/analysis/rotation_control.parquet",
        text="results/analysis/rotation_control.txt",
        grid=report(
            "results/analysis/rotation_control.png",
            caption="../report/rotation_control.rst",
            category="Directions",
        ),
    log:
        "logs/analysis/rotation_control.log",
    benchmark:
        "logs/benchmarks/analysis/rotation_control.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        analysis=config["analysis"],
        settings=config["directions"],
        device=config["device"],
    script:
        "../scripts/rotation_control.py"
