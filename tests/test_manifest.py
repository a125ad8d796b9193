"""load_manifest: paths resolved against the manifest's folder, a clear error per bad cell."""

from __future__ import annotations

import os

import jsonschema
import pandas as pd
import pytest
import yaml

from sg3pipe.manifest import SCHEMA_PATH, ManifestError, load_manifest


def write(folder, text: str, name: str = "samples.tsv"):
    """Write a manifest; ``|`` in ``text`` stands for a tab, to keep the tests readable."""
    path = folder / name
    path.write_text(text.replace("|", "\t"))
    return path


def test_required_columns_only(tmp_path):
    table = load_manifest(write(tmp_path, "id|path\nclip1|videos/a.mp4\nclip2|/data/b.mov\n"))
    assert list(table.columns) == ["id", "path", "start_s", "end_s", "max_frames", "landmarks", "face_track", "truth"]
    assert list(table.index) == ["clip1", "clip2"]
    assert table.loc["clip1", "path"] == str(tmp_path / "videos" / "a.mp4")  # missing files are fine
    assert table.loc["clip2", "path"] == "/data/b.mov"
    assert table["start_s"].isna().all() and table["max_frames"].isna().all()
    assert table.loc["clip1", "landmarks"] is None


def test_options_and_extra_columns(tmp_path):
    text = (
        "id|path|start_s|end_s|max_frames|landmarks|face_track|speaker\n"
        "a.1|a.mp4|1.5|4|100|../marks/a.parquet|tracks/a.json|alice\n"
        "b-2| b.mp4 ||||||\n"
    )
    (tmp_path / "config").mkdir()
    table = load_manifest(write(tmp_path / "config", text))
    a, b = table.loc["a.1"], table.loc["b-2"]
    assert (a["start_s"], a["end_s"], a["max_frames"]) == (1.5, 4.0, 100)
    assert table["max_frames"].dtype == "Int64" and table["start_s"].dtype == "float64"
    assert a["landmarks"] == str(tmp_path / "marks" / "a.parquet")  # '..' resolved, not kept
    assert a["face_track"] == str(tmp_path / "config" / "tracks" / "a.json")
    assert a["speaker"] == "alice" and b["speaker"] is None
    assert b["path"] == str(tmp_path / "config" / "b.mp4")  # cells are stripped
    assert pd.isna(b["start_s"]) and pd.isna(b["max_frames"]) and b["landmarks"] is None


def test_relative_manifest_path_resolves_against_its_folder(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    write(tmp_path / "config", "id|path\nv|clips/v.mp4\n")
    monkeypatch.chdir(tmp_path)
    table = load_manifest(os.path.join("config", "samples.tsv"))
    assert table.loc["v", "path"] == str(tmp_path / "config" / "clips" / "v.mp4")


def test_blank_lines_and_excel_bom(tmp_path):
    path = tmp_path / "samples.tsv"
    path.write_bytes("\ufeffid\tpath\r\n\r\nv1\ta.mp4\r\n\r\n".encode())
    table = load_manifest(path)
    assert list(table["id"]) == ["v1"]


def test_header_only_manifest_is_empty(tmp_path):
    table = load_manifest(write(tmp_path, "id|path\n"))
    assert table.empty and "max_frames" in table.columns


@pytest.mark.parametrize(
    "text, expected",
    [
        ("id|path\nv1|a.mp4\nbad id|b.mp4\n", r"line 3 \(id bad id\), column id: 'bad id' does not match"),
        ("id|path\n..|a.mp4\n", r"line 2 \(id \.\.\), column id: .*letters, digits"),
        ("id|path\nv1|a.mp4\nv1|b.mp4\n", r"line 3 \(id v1\), column id: the id is already used on line 2"),
        ("id|path\nv1|\n", r"line 2 \(id v1\), column path: is empty"),
        ("id|path\n|a.mp4\n", r"line 2, column id: is empty"),
        (
            "id|path|start_s\nv1|a.mp4|soon\n",
            r"line 2 \(id v1\), column start_s: 'soon' is not of type 'number'",
        ),
        ("id|path|start_s\nv1|a.mp4|-1\n", r"column start_s: -1.0 is less than the minimum of 0"),
        ("id|path|end_s\nv1|a.mp4|inf\n", r"column end_s: 'inf' is not of type 'number'"),
        ("id|path|start_s|end_s\nv1|a.mp4|3|2\n", r"column end_s: end_s=2.0 is not after start_s=3.0"),
        ("id|path|max_frames\nv1|a.mp4|2.5\n", r"column max_frames: '2.5' is not of type 'integer'"),
        ("id|path|max_frames\nv1|a.mp4|0\n", r"column max_frames: 0 is less than the minimum of 1"),
        ("id|path\nv1|a.mp4|extra\n", r"line 2: 3 cells but the header names 2 columns"),
        ("id path\nv1 a.mp4\n", r"no column id or path \(columns found: 'id path'\).*tabs \(not spaces\)"),
        ("id|path|id\nv1|a.mp4|v2\n", r"column id appears twice in the header"),
        ("", r"no column id or path \(columns found: none\)"),
    ],
)
def test_bad_manifests_name_the_line_and_column(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ManifestError, match=expected) as caught:
        load_manifest(path)
    assert str(caught.value).startswith(f"manifest {path}")


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nope.tsv")


def test_schema_is_valid_json_schema():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) == {"id", "path"}
    assert all(spec.get("description") for spec in schema["properties"].values())
