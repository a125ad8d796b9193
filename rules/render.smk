# Stage 4 of the per-video chain: pivotal tuning, the edits of the latents, temporal smoothing, every video a user
# watches and the per-frame metrics. Stage: sg3pipe.stages.render (on sg3pipe.pti, sg3pipe.editing.video_edits,
# sg3pipe.temporal and sg3pipe.render). Outputs
# per video: results/{video}/pti/ (losses and loss curve), edits/, smoothed.parquet, videos/*.mp4,
# metrics.parquet; per run: results/summary.parquet.
# One job does all of it: the tuned generator is read only by rendering, editing and smoothing are seconds of
# latent arithmetic that only rendering reads, and every job costs the DAG about 1.5 ms per video at dataset scale
# (benchmarks/bench_dag.py) and a cluster a submission. A tuning interrupted mid-way resumes from its checkpoint
# (results/{video}/pti/work/) when the job reruns.

from sg3pipe.stages.render import pti_outputs

# The PTI outputs when pti.enabled (sg3pipe.stages.render.pti_outputs decides; the curve joins the report).
PTI_OUTPUTS = pti_outputs(config["pti"])
if "curve" in PTI_OUTPUTS:
    PTI_OUTPUTS["curve"] = report(
        PTI_OUTPUTS["curve"],
        caption="../report/pti_loss.rst",
        category="Videos",
        subcategory="{video}",
        labels={"video": "{video}", "figure": "PTI loss"},
    )


rule render:
    """Pivotal tuning of a copy of models.generator on the video's unaligned crops, each frame with its pivot latent
    and crop transform (pti/loss.parquet, loss.png; resumes from pti/work/checkpoint.pt after an interruption);
    each configured edit of the latents at each factor (edits/{edit}.parquet and a strip {edit}.png); fine
    rows averaged over the video, then the configured temporal filter on latents and on the transforms'
    parameters, plotted against the truth when the manifest names a ground-truth table (smoothed.parquet,
    trajectory.png; every frame keeps its row, unusable ones NaN); then the reconstruction, smoothed, PTI, edit,
    field-of-view, side-by-side and paste-back videos, each with as many frames as the source clip, its rate and
    its audio, and metrics per frame."""
    input:
        unpack(render_inputs),
    output:
        **PTI_OUTPUTS,
        edits=report(
            directory("results/{video}/edits"),
            patterns=["{edit}.png"],
            caption="../report/edit_strip.rst",
            category="Videos",
            subcategory="{video}",
            labels={"video": "{video}", "figure": "edit {edit}"},
        ),
        smoothed="results/{video}/smoothed.parquet",
        trajectory=report(
            "results/{video}/trajectory.png",
            caption="../report/trajectory.rst",
            category="Videos",
            subcategory="{video}",
            labels={"video": "{video}", "figure": "transform trajectory"},
        ),
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
        "logs/benchmarks/render/{video}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=180,  # minutes; PTI is most of it (the paper's 8,000 steps take about an hour on a GPU)
        gpu=gpu_count(),
    params:
        pti=config["pti"],
        pti_workdir="results/{video}/pti/work",
        edits=config["edits"],
        smooth=config["smooth"],
        render=config["render"],
        metrics=config["metrics"],
        lpips=lpips_spec(),
        device=config["device"],
    script:
        "../scripts/render.py"


rule summary:
    """One row per video and face track: frames, render speed, jitter before and after smoothing, PTI loss, TL-ID
    and TG-ID."""
    input:
        metrics=expand("results/{video}/metrics.parquet", video=video_ids()),
    output:
        table="results/summary.parquet",
        html=report("results/summary.html", caption="../report/summary.rst", category="Run"),
    log:
        "logs/summary.log",
    benchmark:
        "logs/benchmarks/summary.tsv"
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
        "logs/benchmarks/failures.tsv"
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
