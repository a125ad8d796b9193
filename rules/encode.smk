# Stage 2 of the per-video chain: invert every usable aligned frame into a W+ latent, with reconstruction
# metrics. Stage: sg3pipe.stages.encode (on sg3pipe.inversion). Output per video: results/{video}/latents.parquet
# (one row per row of frames.parquet). In `all`, for every manifest video.


rule encode:
    input:
        table="results/{video}/frames.parquet",
        aligned="results/{video}/aligned.mkv",
        crops="results/{video}/crops.mkv",
        model=encode_model(),
    output:
        table="results/{video}/latents.parquet",
    log:
        "logs/encode/{video}.log",
    benchmark:
        "logs/benchmarks/encode/{video}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,  # minutes; the projector is ~steps x slower than the encoder
        gpu=gpu_count(),
    params:
        encode=config["encode"],
        device=config["device"],
    script:
        "../scripts/encode.py"
