# Stage 4 of the per-video chain: pivotal tuning of the generator on the video's crops. Library: sg3pipe.pti
# (tune_video). Output per video: results/{video}/pti/ (the tuned generator, its losses and loss curve).


rule pti:
    """Fine-tune a copy of models.generator on the video's unaligned crops, each frame with its pivot latent and
    crop transform; resumes from results/{video}/pti/work/checkpoint.pt after an interruption."""
    input:
        frames="results/{video}/frames.parquet",
        latents="results/{video}/latents.parquet",
        crops="results/{video}/crops.mkv",
        generator=model_path("generator"),
    output:
        generator=temp("results/{video}/pti/generator.safetensors"),  # a generator per video: deleted once rendered
        losses="results/{video}/pti/loss.parquet",
        curve=report(
            "results/{video}/pti/loss.png",
            caption="../report/pti_loss.rst",
            category="Videos",
            subcategory="{video}",
            labels={"video": "{video}", "figure": "PTI loss"},
        ),
    log:
        "logs/pti/{video}.log",
    benchmark:
        "benchmarks/out/pti/{video}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=gpu_count(),
    params:
        pti={k: v for k, v in config["pti"].items() if k != "enabled"},
        workdir="results/{video}/pti/work",
        lpips=lpips_spec(),
        device=config["device"],
    script:
        "../scripts/pti.py"
