# Train a ReStyle encoder against models.generator on the aligned frames of every manifest video (rule frames'
# aligned.mkv, frames whose status is usable). Settings: config `train_encoder` (sg3pipe.encoder_training).
# Run with `snakemake --cores N train_encoder`; point models.encoder at the result to use it. Not part of `all`.


rule train_encoder:
    input:
        generator=model_path("generator"),
        aligned=expand("results/{video}/aligned.mkv", video=video_ids()),
        tables=expand("results/{video}/frames.parquet", video=video_ids()),
    output:
        encoder="results/encoder/encoder.safetensors",
        quality="results/encoder/quality.json",
    log:
        "logs/train_encoder.log",
    benchmark:
        "logs/benchmarks/train_encoder.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=24 * 60,
        gpu=gpu_count(),
    params:
        train_encoder=config["train_encoder"],
        encode=config["encode"],
        arcface=config["models"].get("arcface"),
        workdir="results/encoder/training",
        device=config["device"],
    script:
        "../scripts/train_encoder.py"
