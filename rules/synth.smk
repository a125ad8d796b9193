# The synthetic face world's sample clips: rendered faces with exact per-frame ground truth.
# The clips are committed under samples/ and listed in config/samples.tsv; rebuild them with
# `snakemake --cores 2 synth_samples --forcerun synth_samples --allowed-rules synth_samples` (`--allowed-rules`
# keeps a code change from rerunning the model rules upstream). Not part of `all`.

# Clip id -> sg3pipe.synth.clips.ClipSpec fields. The seed fixes identity, motion, smile onset and blinks.
SYNTH_CLIPS = {
    "synth_a": {"seed": 4, "seconds": 4.0, "glasses": 0.0},
    "synth_b": {"seed": 2, "seconds": 4.0, "glasses": 1.0},
}
# The panel's readers (sg3pipe.synth.panel.PANEL).
PANEL_READERS = ["residual", "convformer", "separable"]


rule synth_samples:
    output:
        videos=expand("samples/{clip}.mp4", clip=SYNTH_CLIPS),
        truths=expand("samples/{clip}.truth.parquet", clip=SYNTH_CLIPS),
    log:
        "logs/synth_samples.log",
    benchmark:
        "logs/benchmarks/synth_samples.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        clips=SYNTH_CLIPS,
    script:
        "../scripts/synth_samples.py"


rule synth_classifier:
    """Train the synthetic world's attribute classifier on renders under random similarity transforms (5,000
    steps: 25 minutes on one CPU core with the other one busy; resumes from
    results/synth_models/classifier/checkpoint.pt) and write the shipped model file with its held-out accuracy,
    sharp, blurred and noised. Rebuild with
    `snakemake --cores 2 synth_classifier --forcerun synth_classifier --allowed-rules synth_classifier`.
    Not part of `all`."""
    output:
        classifier="models/synth_classifier.safetensors",
        quality="models/synth_classifier.quality.json",
    log:
        "logs/synth_classifier.log",
    benchmark:
        "logs/benchmarks/synth_classifier.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=3000,
        runtime=60,
        gpu=gpu_count(),
    params:
        workdir="results/synth_models/classifier",
        device=config["device"],
    script:
        "../scripts/synth_classifier.py"


rule synth_panel:
    """Train one reader of the panel (sg3pipe.synth.panel.PANEL: three architectures that read the synthetic
    world's editing figures and that no generator or encoder training ever uses) on degraded renders (3,500
    steps: 25-40 minutes on one CPU core; resumes from results/synth_models/panel/{reader}/checkpoint.pt) and
    write the shipped model file with its held-out accuracy. Build the three with
    `snakemake --cores 2 models/panel/{residual,convformer,separable}.safetensors --forcerun synth_panel
    --allowed-rules synth_panel` (a shell expands the braces). Not part of `all`."""
    output:
        reader="models/panel/{reader}.safetensors",
        quality="models/panel/{reader}.quality.json",
    log:
        "logs/synth_panel/{reader}.log",
    benchmark:
        "logs/benchmarks/synth_panel/{reader}.tsv"
    wildcard_constraints:
        reader="|".join(PANEL_READERS),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
        gpu=gpu_count(),
    params:
        reader="{reader}",
        workdir="results/synth_models/panel/{reader}",
        device=config["device"],
    script:
        "../scripts/synth_panel.py"


rule synth_models:
    """Train the synthetic world's generator by distillation from the renderer, in the stages of
    sg3pipe.synth.generator_recipe (four teacher classifiers, then seven generator runs, the last two also against
    the shipped classifier; each resumes from results/synth_models/generator/{stage}/checkpoint.pt), measure it
    with the shipped classifier and write the shipped model file (the stages take about 4 h 45 min on one CPU
    core, 34,000 steps in all; the teachers 16-31 min each). Rebuild with
    `snakemake --cores 2 synth_models --forcerun synth_models --allowed-rules synth_models`. Not part of `all`."""
    input:
        classifier=ancient("models/synth_classifier.safetensors"),
    output:
        generator="models/synth_generator.safetensors",
        quality="models/synth_generator.quality.json",
    log:
        "logs/synth_models.log",
    benchmark:
        "logs/benchmarks/synth_models.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=gpu_count(),
    params:
        workdir="results/synth_models/generator",
        device=config["device"],
    script:
        "../scripts/synth_models.py"


rule synth_encoder:
    """Train the synthetic world's ReStyle-e4e encoder against the shipped generator on aligned renders and
    write the shipped model file and its quality record (36 minutes on 2 CPU cores; resumes from
    results/synth_models/encoder/checkpoint.pt). Rebuild with
    `snakemake --cores 2 synth_encoder --forcerun synth_encoder --allowed-rules synth_encoder`. Not part of `all`
    (which uses the file): the generator is `ancient` so that a checkout's file times never retrain the encoder;
    tests check that the encoder's decoder is the shipped generator."""
    input:
        generator=ancient("models/synth_generator.safetensors"),
    output:
        encoder="models/synth_encoder.safetensors",
        quality="models/synth_encoder.quality.json",
    log:
        "logs/synth_encoder.log",
    benchmark:
        "logs/benchmarks/synth_encoder.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=180,
        gpu=gpu_count(),
    params:
        workdir="results/synth_models/encoder",
        device=config["device"],
    script:
        "../scripts/synth_encoder.py"


rule astronaut_sample:
    """Rebuild the real-photo sample clip and its ground truth (sg3pipe.synth.photo_clip)."""
    output:
        video="samples/astronaut.mp4",
        truth="samples/astronaut.truth.parquet",
    log:
        "logs/astronaut_sample.log",
    benchmark:
        "logs/benchmarks/astronaut_sample.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/astronaut_sample.py"
