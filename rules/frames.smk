# Stage 1 of the per-video chain: decode, landmarks, FFHQ-aligned crops, unaligned crops, crop transforms.
# Stage: sg3pipe.stages.frames (on sg3pipe.frames). Outputs per video: results/{video}/frames.parquet (one row per
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
        ingest=config["ingest"],
        landmarks=config["landmarks"],
        faces=config["faces"],
        align=config["align"],
        clip=frames_options,
    script:
        "../scripts/frames.py"
