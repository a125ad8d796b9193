# Stage 2 of the per-video chain: invert every usable aligned frame into a W+ latent, with reconstruction
# metrics. Library: sg3pipe.inversion (invert_video). Output per video: results/{video}/latents.parquet (one row
# per row of frames.parquet). Not in `all` until an encoder ships with the synthetic world.


def encode_model(wildcards):
    """The model file of `encode.method`: models.encoder for `encoder`, models.generator for `projector`."""
    name = "encoder" if config["encode"]["method"] == "encoder" else "generator"
    if not config["models"].get(name):
        raise ValueError(
            f"encode.method is {config['encode']['method']!r} but models.{name} is not set: point models.{name} at "
            "a model file, or run the optimisation-based inversion with --config encode='{method: projector}'"
        )
    return model_path(name)


rule encode:
    input:
        table="results/{video}/frames.parquet",
        aligned="results/{video}/aligned.mkv",
        crops="results/{video}/crops.mkv",
        model=encode_model,
    output:
        table="results/{video}/latents.parquet",
    params:
        encode=config["encode"],
        device=config["device"],
    log:
        "logs/encode/{video}.log",
    benchmark:
        "benchmarks/out/encode/{video}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 120 * attempt,  # minutes; the projector is ~steps x slower than the encoder
        gpu=1 if config["device"] != "cpu" else 0,
    script:
        "../scripts/encode.py"
