# The synthetic face world's sample clips: rendered faces with exact per-frame ground truth.
# The clips are committed under samples/ and listed in config/samples.tsv; rebuild them with
# `snakemake --cores 2 --forcerun synth_samples synth_samples`. Not part of `all`.

# Clip id -> sg3pipe.synth.clips.ClipSpec fields. The seed fixes identity, motion, smile onset and blinks.
SYNTH_CLIPS = {
    "synth_a": {"seed": 4, "seconds": 4.0, "glasses": 0.0},
    "synth_b": {"seed": 2, "seconds": 4.0, "glasses": 1.0},
}


rule synth_samples:
    output:
        videos=expand("samples/{clip}.mp4", clip=SYNTH_CLIPS),
        truths=expand("samples/{clip}.truth.parquet", clip=SYNTH_CLIPS),
    params:
        clips=SYNTH_CLIPS,
    log:
        "logs/synth_samples.log",
    benchmark:
        "benchmarks/out/synth_samples.tsv"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/synth_samples.py"


rule synth_models:
    """Train the synthetic world's generator by distillation from the renderer (about 1-2 hours on 2 CPU
    cores; resumes from results/synth_models/generator/checkpoint.pt) and write the shipped model file.
    Rebuild with `snakemake --cores 2 --forcerun synth_models synth_models`. Not part of `all`."""
    output:
        generator="models/synth_generator.safetensors",
        quality="models/synth_generator.quality.json",
    params:
        workdir="results/synth_models/generator",
        device=config["device"],
    log:
        "logs/synth_models.log",
    benchmark:
        "benchmarks/out/synth_models.tsv"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=180,
        gpu=1 if config["device"] != "cpu" else 0,
    script:
        "../scripts/synth_models.py"
