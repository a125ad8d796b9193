"""The `sg3pipe` command line: inspect and convert generator files."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from generators import make_generator
from official_format import write_official_pickle

from sg3pipe.cli import main
from sg3pipe.networks.loading import load_generator
from sg3pipe.provenance import file_sha256


@pytest.fixture(scope="module")
def pkl(tmp_path_factory):
    return write_official_pickle(tmp_path_factory.mktemp("cli") / "G.pkl", make_generator("R", resolution=32))


def test_inspect_prints_format_hash_config_and_layer_table(pkl, capsys):
    assert main(["inspect", str(pkl)]) == 0
    out = capsys.readouterr().out
    G = load_generator(pkl)
    assert "format:      nvidia-pkl" in out
    assert f"sha256:      {file_sha256(pkl)}" in out
    assert '"use_radial_filters": true' in out
    assert "resolution:  32x32, 3 channels" in out
    assert "num_ws:      16" in out
    assert f"parameters:  {sum(p.numel() for p in G.parameters()):,}" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("L", "input"))}
    assert list(rows) == ["input", *G.synthesis.layer_names]
    for name in G.synthesis.layer_names:
        layer = getattr(G.synthesis, name)
        size, channels, cutoff, rate, up, down = rows[name]
        assert (int(size), int(channels), int(up), int(down)) == (
            layer.out_size,
            layer.out_channels,
            layer.up_factor,
            layer.down_factor,
        )
        assert float(cutoff) == pytest.approx(layer.spec.out_cutoff, abs=0.005)
        assert float(rate) == layer.spec.out_sampling_rate


def test_convert_writes_sg3pipe_format_and_prints_its_hash(pkl, tmp_path, capsys):
    out_path = tmp_path / "G.safetensors"
    assert main(["convert", str(pkl), str(out_path)]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {file_sha256(out_path)}" in out
    converted, original = load_generator(out_path), load_generator(pkl)
    assert converted.source["format"] == "sg3pipe"
    assert converted.init_kwargs == original.init_kwargs
    a, b = converted.state_dict(), original.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_a_bad_file_gives_one_line_and_status_1(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.pkl")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "models.generator" in err and "Traceback" not in err
    (tmp_path / "G.pkl").write_bytes(b"")
    assert main(["convert", str(tmp_path / "G.pkl"), str(tmp_path / "out.safetensors")]) == 1
    assert "is empty" in capsys.readouterr().err
    assert not (tmp_path / "out.safetensors").exists()


def test_console_entry_point_runs(pkl):
    result = subprocess.run(
        [sys.executable, "-m", "sg3pipe.cli", "inspect", str(pkl)], capture_output=True, text=True, check=True
    )
    assert "nvidia-pkl" in result.stdout
