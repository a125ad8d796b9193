"""The config checked as a whole at parse time (sg3pipe.workflow_config): settings read from the model files'
headers, and one clear error for each combination that cannot work; and the shipped official-weights config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from generators import make_generator
from official_encoder_format import write_official_checkpoint
from official_format import write_official_pickle
from snakemake.utils import validate
from test_encoders import make_encoder
from workflow_runs import snakemake

from sg3pipe.io import official_pickle
from sg3pipe.networks.loading import infer_config, read_generator_config, save_generator
from sg3pipe.networks.restyle import ReStyleEncoder, read_decoder_config, save_encoder
from sg3pipe.workflow_config import resolve_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schemas" / "config.schema.yaml"


def merged(*parts: dict) -> dict:
    """Config dicts merged key by key, later ones winning (as Snakemake merges --configfile files)."""
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def bundled_config(**overrides) -> dict:
    """config/config.yaml with ``overrides``, validated with the schema's defaults filled in."""
    config = merged(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), overrides)
    validate(config, str(SCHEMA))
    return config


@pytest.fixture(scope="module")
def official_files(tmp_path_factory) -> dict[str, Path]:
    """A 64-px NVIDIA pickle, an official ReStyle-e4e checkpoint with that generator as its decoder, a 32-px
    sg3pipe encoder, and a stand-in file at the AnyCost predictor's path (the checks read no weights of it)."""
    folder = tmp_path_factory.mktemp("official")
    G = make_generator("R", resolution=64, seed=1)
    encoder = make_encoder("ProgressiveBackboneEncoder", seed=1, w_dim=G.w_dim)
    small = make_generator("T", resolution=32, seed=2)
    e4e = "ProgressiveBackboneEncoder"
    files = {
        "pkl": write_official_pickle(folder / "g.pkl", G),
        "pt": folder / "g.pt",
        "safetensors": save_generator(G, folder / "g.safetensors"),
        "restyle": write_official_checkpoint(folder / "e4e.pt", encoder, G, G.mapping.w_avg.clone(), e4e),
        "encoder_32": save_encoder(ReStyleEncoder(encoder, small, small.mapping.w_avg.clone()), folder / "e32.pt"),
        "anycost": folder / "attribute_predictor.pt",
    }
    torch.save(G.state_dict(), files["pt"])
    files["anycost"].write_bytes(b"weights are not read by the checks")
    return files


def test_generator_config_comes_from_the_header_of_every_format(official_files, monkeypatch):
    expected = infer_config(make_generator("R", resolution=64, seed=1).state_dict())
    for fmt in ("pkl", "pt", "safetensors"):
        config = read_generator_config(official_files[fmt])
        assert (config["img_resolution"], config["w_dim"]) == (64, expected["w_dim"]), fmt

    # The pickle's tensors are skipped, not decoded: reading the weights would fail here, the header does not.
    def refuse(data):
        raise AssertionError("a tensor was decoded")

    monkeypatch.setitem(official_pickle.ALLOWED_GLOBALS, ("torch.storage", "_load_from_bytes"), refuse)
    assert read_generator_config(official_files["pkl"])["img_resolution"] == 64
    with pytest.raises(Exception, match="a tensor was decoded"), open(official_files["pkl"], "rb") as f:
        official_pickle.read_generator(f)


def test_decoder_config_of_an_encoder_file_is_read_without_its_weights(official_files):
    assert read_decoder_config(official_files["restyle"])["img_resolution"] == 64
    assert read_decoder_config(official_files["encoder_32"])["img_resolution"] == 32


def test_align_size_follows_the_generator_and_a_different_one_is_refused():
    config = resolve_config(bundled_config(), ROOT)
    assert config["align"]["size"] == 64  # the bundled synthetic generator's resolution
    assert config["analysis"]["renderer_factors"] is True  # the synthetic scorer's samples come from the renderer
    with pytest.raises(ValueError, match=r"align.size is 32 but models.generator .* renders 64x64.*set it to 64"):
        resolve_config(bundled_config(align={"size": 32}), ROOT)


def test_encoder_for_another_generator_is_refused(official_files):
    config = bundled_config(
        models={"generator": str(official_files["pkl"]), "encoder": str(official_files["encoder_32"])}
    )
    with pytest.raises(
        ValueError, match=r"models.encoder .* inverts into a different generator.*img_resolution 32 vs 64"
    ):
        resolve_config(config, ROOT)
    projector = copy.deepcopy(config)
    projector["encode"]["method"] = "projector"  # the projector needs no encoder
    projector["edits"] = []
    assert resolve_config(projector, ROOT)["align"]["size"] == 64


def test_too_few_samples_for_the_ratio_is_refused_with_the_numbers_that_work():
    with pytest.raises(ValueError, match=r"keep 5 samples on each side.*raise directions.samples to 200"):
        resolve_config(bundled_config(directions={"samples": 100, "ratio": 0.05}), ROOT)


def test_official_config_needs_only_the_model_paths(official_files):
    official = yaml.safe_load((ROOT / "config" / "official.yaml").read_text())
    assert set(official) == {"models", "edits"}
    assert set(official["models"]) == {"generator", "encoder", "scorer"}
    paths = {"generator": str(official_files["pkl"]), "encoder": str(official_files["restyle"])}
    paths["scorer"] = {"kind": "anycost", "path": str(official_files["anycost"])}
    config = resolve_config(bundled_config(**merged(official, {"models": paths})), ROOT)
    assert config["align"]["size"] == 64 and config["analysis"]["renderer_factors"] is False
    # The synthetic world's edits name attributes the AnyCost predictor does not score: refused, with its names.
    synthetic_edits = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["edits"]
    with pytest.raises(ValueError, match=r"edits name directions \['smiling', 'glasses', 'smiling.s'\].*'Smiling'"):
        resolve_config(bundled_config(**merged(official, {"models": paths, "edits": synthetic_edits})), ROOT)


def test_a_wrong_combination_fails_the_dry_run_before_any_job(tmp_path):
    (tmp_path / "overrides.yaml").write_text(yaml.safe_dump({"align": {"size": 128}}))
    result = snakemake(tmp_path, "-n", "--cores", "1", timeout=120)
    assert result.returncode != 0
    assert "align.size is 128 but models.generator" in result.stdout + result.stderr
