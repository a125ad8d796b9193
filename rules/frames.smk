# Stage 1 of the per-video chain: decode, landmarks, FFHQ-aligned crops, unaligned crops, crop transforms.
# Library: sg3pipe.frames (build_frames). Outputs per video: results/{video}/frames.parquet (one row per
# decoded frame), aligned.mkv and crops.mkv (lossless, one frame per row; temporary: Snakemake deletes them once
# every job that reads them is done, as they are the largest files of a dataset run; `--notemp` keeps them).


rule frames:
    input:
        unpack(frames_inputs),
    output:
        table="results/{video}/frames.parquet",
        aligned=temp("results/{video}/aligned.mkv"),
        crops=temp("results/{video}/crops.mkv"),
    log:
        "logs/frames/{video}.log",
    benchmark:
        "logs/benchmarks/frames/{video}.tsv"
    conda:
        CONDA_ENV
    threads: 2  # the landmark loop, plus ffmpeg decoding and the two FFV1 encoders beside it
    resources:
        mem_mb=3000,
        runtime=60,  # minutes; ~30 frames/s for 64-px crops on a CPU
    params:
        options=frames_options,
    script:
        "../scripts/frames.py"


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
