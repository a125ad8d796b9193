# Model-level previews of the configured generator (shared by all videos).


rule generator_preview:
    """A grid of samples and strips of translations and rotations, to see what the generator does."""
    input:
        generator=model_path("generator"),
    output:
        grid=report("results/generator/samples.png", caption="../report/generator_samples.rst", category="Generator"),
        strip="results/generator/transform_strip.png",
    log:
        "logs/generator_preview.log",
    benchmark:
        "logs/benchmarks/generator_preview.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,
    params:
        preview=config["preview"],
        device=config["device"],
    script:
        "../scripts/generator_preview.py"
