# Model-level analyses of the configured generator's directions and layers (shared by all videos): the flip table,
# the DCI table and the paper's rotation-control analysis. Library: sg3pipe.stages.analysis. Outputs:
# results/analysis/.


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
        directions=config["directions"],
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
        directions=config["directions"],
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
        directions=config["directions"],
        device=config["device"],
    script:
        "../scripts/rotation_control.py"
