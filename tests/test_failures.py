"""Failure records of failed jobs and the run's failures table (sg3pipe.scripting, sg3pipe.failures)."""

from __future__ import annotations

import pandas as pd
import pytest

from sg3pipe.failures import collect_failures, report_failures, write_failures
from sg3pipe.io.tables import read_table
from sg3pipe.scripting import failure_record_path, rule_logging


def fail(log, rule, video, message):
    with pytest.raises(ValueError), rule_logging(log, rule=rule, wildcards={"video": video}):
        raise ValueError(message)


def test_a_failed_job_leaves_a_record_and_a_later_success_removes_it(tmp_path):
    log = tmp_path / "logs" / "frames" / "a.log"
    log.parent.mkdir(parents=True)
    fail(log, "frames", "a", "a.mp4: the file is empty (0 bytes)")
    assert "rule frames failed" in log.read_text() and "Traceback" in log.read_text()
    assert failure_record_path(log).exists()
    with rule_logging(log, rule="frames", wildcards={"video": "a"}):
        pass
    assert not failure_record_path(log).exists()


def test_failures_table_lists_each_failed_job_with_its_reason(tmp_path, capsys):
    logs = tmp_path / "logs"
    (logs / "frames").mkdir(parents=True)
    (logs / "directions").mkdir()
    fail(logs / "frames" / "b.log", "frames", "b", "b.mp4: no frame has a usable face\nsecond line")
    fail(logs / "frames" / "a.log", "frames", "a", "a.mp4: the file is empty (0 bytes)")
    fail(logs / "directions" / "directions.log", "directions", None, "no samples")
    table = write_failures(logs, tmp_path / "results" / "failures.parquet")
    assert list(table["rule"]) == ["directions", "frames", "frames"] and list(table["video"]) == ["", "a", "b"]
    stored, _ = read_table(tmp_path / "results" / "failures.parquet")
    assert stored.equals(table)
    tsv = pd.read_csv(tmp_path / "results" / "failures.tsv", sep="\t", keep_default_na=False)
    assert tsv.astype(str).equals(table.astype(str))
    assert table["log"][1].endswith("frames/a.log")
    report_failures(table)
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "3 failed job(s), listed in results/failures.parquet:"
    assert "frames b: b.mp4: no frame has a usable face (" in err and "second line" not in err


def test_no_failures_gives_an_empty_table_with_the_columns(tmp_path):
    table = collect_failures(tmp_path)
    assert table.empty and list(table.columns) == ["rule", "video", "error", "message", "log"]
    write_failures(tmp_path, tmp_path / "failures.parquet")
    assert read_table(tmp_path / "failures.parquet")[0].empty
