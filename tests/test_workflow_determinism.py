"""Same inputs, same seeds, same tables: a second run of the sample from scratch, in another folder,
writes Parquet tables equal to the first run's, value for value (the data, not the file bytes)."""

from __future__ import annotations

from workflow_runs import TARGETS, assert_same_tables, prepare_sample_run, snakemake, tables


def test_a_second_run_from_the_same_inputs_writes_the_same_tables(sample_run, tmp_path):
    folder = prepare_sample_run(tmp_path / "again")
    result = snakemake(folder, "--cores", "2", *TARGETS)
    assert result.returncode == 0, result.stderr[-4000:]
    first = tables(sample_run)
    # Every stage's tables: frames, latents, edits, smoothed, PTI losses, metrics, directions, flips, summary.
    assert {"synth_a/frames.parquet", "synth_a/latents.parquet", "synth_a/edits/smile.parquet",
            "synth_a/smoothed.parquet", "synth_a/pti/loss.parquet", "synth_a/metrics.parquet",
            "directions/synth_generator/directions.parquet", "analysis/flips.parquet",
            "summary.parquet"} <= set(first)  # fmt: skip
    assert_same_tables(first, tables(folder / "results"))
