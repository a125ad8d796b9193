# Stage 5 of the per-video chain: every video a user watches, and the per-frame metrics. Library:
# sg3pipe.render (variants, videos, fov, pasteback). Output per video: results/{video}/videos/*.mp4 and
# results/{video}/metrics.parquet; per run: results/summary.parquet.


rule render:
    """Reconstruction, smoothed, PTI, every edit at every factor, field of view, side by side and paste-back
    videos, each with as many frames as the source clip, its rate and its audio; metrics per frame."""
    input:
        unpack(render_inputs),
    output:
        videos=directory("results/{video}/videos"),
        metrics="results/{video}/metrics.parquet",
        plot=report(
            "results/{video}/metrics.png",
            caption="../report/metrics.rst",
            category="Videos",
            subcategory="{video}",
            labels={"video": "{video}", "figure": "per-frame metrics"},
        ),
    log:
        "logs/render/{video}.log",
    benchmark:
        "benchmarks/out/render/{video}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpu_count(),
    params:
        render=config["render"],
        edits=edit_names(),
        smooth=config["smooth"],
        identity=config["metrics"]["identity"],
        lpips=lpips_spec(),
        clip=frames_options,
        device=config["device"],
    script:
        "../scripts/render.py"


rule summary:
    """One row per video: frames, render speed, jitter before and after smoothing, PTI loss, TL-ID and TG-ID."""
    input:
        metrics=expand("results/{video}/metrics.parquet", video=video_ids()),
    output:
        table="results/summary.parquet",
        html=report("results/summary.html", caption="../report/summary.rst", category="Run"),
    log:
        "logs/summary.log",
    benchmark:
        "benchmarks/out/summary.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/summary.py"


rule failures:
    """The run's failures table. The job writes it from the failure records present when the run starts; every
    run then rewrites it at its end (onsuccess/onerror in the Snakefile), so it lists the run's failed jobs."""
    output:
        table="results/failures.parquet",
        html=report("results/failures.html", caption="../report/failures.rst", category="Run"),
    log:
        "logs/failures.log",
    benchmark:
        "benchmarks/out/failures.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        logs="logs",
    script:
        "../scripts/failures.py"
