# Model-level editing: directions of models.generator scored by models.scorer (shared by all videos), their
# edits of every video, and how cleanly they edit. Library: sg3pipe.editing.
# Outputs: results/directions/{generator}/ (samples, one .npy per direction, directions.parquet),
# results/{video}/edits/{edit}.parquet and .png, results/analysis/flips.parquet.

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
        "benchmarks/out/directions/samples.tsv"
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
    """One W boundary (.npy, the official format) and one StyleSpace direction per scored attribute."""
    input:
        samples=rules.direction_samples.output.samples,
    output:
        table=f"{DIRECTIONS}/directions.parquet",
        html=report(f"{DIRECTIONS}/directions.html", caption="../report/directions.rst", category="Directions"),
    log:
        "logs/directions/directions.log",
    benchmark:
        "benchmarks/out/directions/directions.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=config["directions"],
        outdir=lambda wildcards, output: str(Path(output.table).parent),
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
        "benchmarks/out/analysis/flips.tsv"
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


rule edit:
    """A video's latents edited by every configured edit at each of its factors, and a strip per edit to look at,
    in one folder: edits/{edit}.parquet and {edit}.png (one job and one output per video, not per edit: the DAG
    grows with the videos only, and the generator loads once)."""
    input:
        latents="results/{video}/latents.parquet",
        directions=rules.directions.output.table,
        generator=model_path("generator"),
    output:
        edits=report(
            directory("results/{video}/edits"),
            patterns=["{edit}.png"],
            caption="../report/edit_strip.rst",
            category="Videos",
            subcategory="{video}",
            labels={"video": "{video}", "figure": "edit {edit}"},
        ),
    log:
        "logs/edit/{video}.log",
    benchmark:
        "benchmarks/out/edit/{video}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=3000,
        runtime=30,
        gpu=gpu_count(),
    params:
        specs=config["edits"],
        device=config["device"],
    script:
        "../scripts/edit.py"


rule dci:
    """The paper's disentanglement table: DCI of W, W+ (encoder inversions, when models.encoder is set) and S."""
    input:
        samples=rules.direction_samples.output.samples,
        generator=model_path("generator"),
        encoder=lambda wildcards: model_path("encoder") if config["models"].get("encoder") else [],
    output:
        table="results/analysis/dci.parquet",
        text="results/analysis/dci.txt",
    log:
        "logs/analysis/dci.log",
    benchmark:
        "benchmarks/out/analysis/dci.tsv"
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
