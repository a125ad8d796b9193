"""Loading generators: official pickles (safely), editing-repo state dicts, sg3pipe's own format, bad files."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import subprocess

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import assert_close_to_scale
from generators import make_generator
from official_format import write_official_pickle

from sg3pipe.networks import loading
from sg3pipe.networks.loading import GeneratorFileError, infer_config, load_generator, save_generator
from sg3pipe.networks.stylegan3 import Generator
from sg3pipe.transforms import synthesis_transform

SMALL = {"channel_base": 2048, "channel_max": 64}
# The same weights through the same code, as a fraction of each image's largest magnitude: measured 0.
TOL_SAME_MATH = 1e-6


def canary_source(canary) -> str:
    """Module source that would create ``canary`` if anything executed it."""
    return f"open({str(canary)!r}, 'w').close()\n\nclass Generator:\n    pass\n"


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope="module", params=["T", "R"])
def official(request, tmp_path_factory):
    """(generator, its official-format pickle, canary path). T is written with protocol 3, R with 4."""
    G = make_generator(request.param, resolution=32, seed=5, **SMALL)
    folder = tmp_path_factory.mktemp(f"official-{request.param}")
    canary = folder / "module_src_ran"
    # The official training script records magnitude_ema_beta too; the loader must accept it.
    init_kwargs = {**G.init_kwargs, "magnitude_ema_beta": 0.5 ** (32 / 20000)}
    protocol = 3 if request.param == "T" else 4
    path = write_official_pickle(
        folder / "network-snapshot.pkl", G, init_kwargs=init_kwargs, module_src=canary_source(canary), protocol=protocol
    )
    return G, path, canary


@torch.no_grad()
def test_official_pickle_renders_what_its_generator_renders(official):
    G, path, canary = official
    loaded = load_generator(path)
    assert isinstance(loaded, Generator) and not loaded.training
    assert all(p.requires_grad for p in loaded.parameters())
    assert loaded.source == {
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "format": "nvidia-pkl",
    }
    assert loaded.init_kwargs["magnitude_ema_beta"] == 0.5 ** (32 / 20000)
    assert_same_weights(G, loaded)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(7))
    transform = synthesis_transform([10.0, -25.0], [0.1, 0.0], [0.0, -0.2])
    expected = G(z, truncation_psi=0.7, transform=transform)
    images = loaded(z, truncation_psi=0.7, transform=transform)
    assert expected.std() > 0.05  # not flat, so equality means something
    assert_close_to_scale(images, expected, TOL_SAME_MATH, dim=(1, 2, 3))
    assert not canary.exists(), "module_src was executed"


def test_official_pickle_to_sg3pipe_format_round_trips_without_pickle(official, tmp_path, monkeypatch):
    G, path, _ = official
    from_pickle = load_generator(path)
    out = save_generator(from_pickle, tmp_path / "generator.safetensors")

    def no_pickle(*args, **kwargs):
        raise AssertionError("sg3pipe's format must load without pickle")

    monkeypatch.setattr(torch, "load", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(loading.official_pickle, "read_generator", no_pickle)
    again = load_generator(out)
    assert again.source["format"] == "sg3pipe"
    assert again.init_kwargs == from_pickle.init_kwargs
    assert_same_weights(G, again)
    # The file records where it came from.
    metadata = safetensors.safe_open(str(out), framework="pt").metadata()
    assert metadata["format_version"] == "1"
    assert f'"sha256": "{from_pickle.source["sha256"]}"' in metadata["source"]


def test_loading_leaves_the_callers_random_stream_alone(official):
    _, path, _ = official
    torch.manual_seed(0)
    expected = torch.randn(3)
    torch.manual_seed(0)
    load_generator(path)
    assert torch.equal(torch.randn(3), expected)


# ---------------------------------------------------------------------------------------------- editing .pt


PT_CONFIGS = {
    "T32": ("T", 32, {"channel_base": 1024, "channel_max": 32}),
    "R32": ("R", 32, {"channel_base": 2048, "channel_max": 64}),
    "T64-cond": ("T", 64, {"channel_base": 2048, "channel_max": 64, "c_dim": 4, "mapping_kwargs": {"num_layers": 3}}),
    "R64": ("R", 64, {"channel_base": 1024, "channel_max": 64, "w_dim": 16}),
}


@pytest.mark.parametrize("name", sorted(PT_CONFIGS))
def test_editing_state_dict_infers_its_config(name, tmp_path):
    cfg, res, overrides = PT_CONFIGS[name]
    G = make_generator(cfg, resolution=res, **overrides)
    state_dict = G.state_dict()
    state_dict["synthesis.input.transform"] = torch.randn(4, 3, 3)  # a PTI-tuned file's last batch
    torch.save(state_dict, tmp_path / "G.pt")
    loaded = load_generator(tmp_path / "G.pt")
    expected = {
        "z_dim": 32,
        "c_dim": overrides.get("c_dim", 0),
        "w_dim": overrides.get("w_dim", 32),
        "img_resolution": res,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": overrides.get("mapping_kwargs", {}).get("num_layers", 2)},
        "channel_base": overrides["channel_base"],
        "channel_max": overrides["channel_max"],
        **({"conv_kernel": 1, "use_radial_filters": True} if cfg == "R" else {}),
    }
    assert loaded.init_kwargs == expected
    assert loaded.source["format"] == "editing-pt"
    assert torch.equal(loaded.synthesis.input.transform, torch.eye(3))
    assert_same_weights(G, loaded)


# The official configs, as their pickles' ``_init_kwargs`` record them (R doubles T's channels: NVlabs/stylegan3
# ``train.py``): built on the meta device, so only
# shapes exist and nothing is allocated.
OFFICIAL_CONFIGS = {
    "r-ffhq-1024": (1024, 65536, 1024, True),
    "r-ffhqu-256": (256, 32768, 1024, True),
    "t-ffhqu-256": (256, 16384, 512, False),
    "t-ffhq-1024": (1024, 32768, 512, False),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL_CONFIGS))
def test_infer_config_of_official_shapes(name):
    res, base, cmax, radial = OFFICIAL_CONFIGS[name]
    kwargs = {
        "z_dim": 512,
        "c_dim": 0,
        "w_dim": 512,
        "img_resolution": res,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "channel_base": base,
        "channel_max": cmax,
        **({"conv_kernel": 1, "use_radial_filters": True} if radial else {}),
    }
    with torch.device("meta"):
        state_dict = Generator(**kwargs).state_dict()
    state_dict["synthesis.input.transform"] = torch.empty(8, 3, 3, device="meta")
    assert infer_config(state_dict) == kwargs


def test_infer_config_refuses_names_off_the_schedule():
    with torch.device("meta"):
        state_dict = Generator(32, 0, 32, 32, 3, channel_base=1024, channel_max=32).state_dict()
    renamed = {re.sub(r"L5_52_32", "L5_52_33", key): t for key, t in state_dict.items()}
    with pytest.raises(ValueError, match="no power-of-two channel_base"):
        infer_config(renamed)


# ---------------------------------------------------------------------------------------------- malicious


def call_pickle(module: str, name: str, argument: str | bytes) -> bytes:
    """Protocol-3 opcodes for ``module.name(argument)``, naming the global exactly as given."""
    return b"\x80\x03c" + f"{module}\n{name}\n".encode() + pickle.dumps(argument, protocol=3)[2:-1] + b"\x85R."


class Popen:
    """Reduces to ``subprocess.Popen(["touch", path])``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return subprocess.Popen, (["touch", self.path],)


class System:
    """Reduces to ``os.system("touch path")`` (pickle names it ``posix.system``)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def malicious_files(folder, canary) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, the global the loader must name); each would create ``canary`` if unpickled."""
    G = make_generator("T", resolution=32)
    nested = write_official_pickle(folder / "nested.pkl", G, init_kwargs={**G.init_kwargs, "x": Popen(canary)})
    torch.save({"mapping.fc0.weight": torch.zeros(1), "x": System(canary)}, folder / "evil.pt")
    # A "tensor storage" whose bytes are a pickle that calls os.system.
    storage = call_pickle("torch.storage", "_load_from_bytes", pickle.dumps(System(canary), protocol=2))
    return {
        "os.system": (call_pickle("os", "system", f"touch {canary}"), "os.system"),
        "torch-storage-bytes": (storage, "posix.system"),
        "torch-save-pt": ((folder / "evil.pt").read_bytes(), "posix.system"),
        "builtins.eval": (call_pickle("builtins", "eval", f"open({str(canary)!r}, 'w').close()"), "builtins.eval"),
        "nested-subprocess.Popen": (nested.read_bytes(), "subprocess.Popen"),
        "protocol-0-posix.system": (f"cposix\nsystem\n(S'touch {canary}'\ntR.".encode(), "posix.system"),
    }


MALICIOUS = [
    "os.system",
    "builtins.eval",
    "nested-subprocess.Popen",
    "protocol-0-posix.system",
    "torch-storage-bytes",
    "torch-save-pt",
]


@pytest.mark.parametrize("name", MALICIOUS)
def test_malicious_pickles_are_refused_naming_the_global(name, tmp_path):
    canary = tmp_path / "pwned"
    data, global_name = malicious_files(tmp_path, canary)[name]
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(GeneratorFileError, match=re.escape(f"'{global_name}'")) as err:
        load_generator(path)
    assert str(path) in str(err.value) and "nothing in the file was run" in str(err.value)
    assert not canary.exists()


def test_the_eval_payload_is_real(tmp_path):
    # The control: plain pickle does run the payload, so the refusal above is what keeps the canary away.
    canary = tmp_path / "pwned"
    data, _ = malicious_files(tmp_path, canary)["builtins.eval"]
    pickle.loads(data)
    assert canary.exists()


# ---------------------------------------------------------------------------------------------- bad files


@pytest.fixture(scope="module")
def small_official_pkl(tmp_path_factory):
    return write_official_pickle(tmp_path_factory.mktemp("pkl") / "G.pkl", make_generator("T", resolution=32))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, small_official_pkl) -> dict[str, tuple[bytes, str, str]]:
    """name -> (bytes, file name, words the error must contain)."""
    folder = tmp_path_factory.mktemp("bad")
    G = make_generator("T", resolution=32)
    pkl = small_official_pkl.read_bytes()
    buffer = folder / "sd.pt"
    torch.save(G.state_dict(), buffer)
    pt = buffer.read_bytes()
    save_generator(G, folder / "g.safetensors")
    sg3 = (folder / "g.safetensors").read_bytes()
    wrong = {**G.state_dict(), "synthesis.L3_36_32.weight": torch.zeros(32, 32, 1, 1)}
    torch.save(wrong, buffer)
    wrong_shape_pt = buffer.read_bytes()
    safetensors.torch.save_file({"w": torch.zeros(2)}, folder / "other.safetensors", metadata={"format": "pt"})
    foreign_safetensors = (folder / "other.safetensors").read_bytes()
    # An official pickle whose recorded config claims more channels than its weights have.
    mismatched = write_official_pickle(folder / "m.pkl", G, init_kwargs={**G.init_kwargs, "channel_max": 64})
    discriminator_only = write_official_pickle(folder / "d.pkl", None)
    torch.save({"state_dict": {"encoder.conv.weight": torch.zeros(1)}, "latent_avg": torch.zeros(1)}, buffer)
    encoder = buffer.read_bytes()
    return {
        "empty": (b"", "G.pkl", "is empty"),
        "truncated-pkl": (pkl[: len(pkl) // 2], "G.pkl", "truncated or corrupt pickle"),
        "truncated-pt": (pt[: len(pt) // 2], "G.pt", "truncated or corrupt torch file"),
        "truncated-safetensors": (sg3[: len(sg3) // 2], "G.safetensors", "truncated or corrupt safetensors"),
        "png-as-pkl": (b"\x89PNG\r\n\x1a\n" + bytes(100), "G.pkl", "is a PNG image"),
        "text-as-pkl": (b"z_dim: 512\nw_dim: 512\n", "G.pkl", "is a text file"),
        "text-as-pt": (b"z_dim: 512\nw_dim: 512\n", "G.pt", "is a text file"),
        "dict-pickle": (pickle.dumps({"G": 1, "D": 2}), "G.pkl", "keys ['D', 'G'] and no network object under 'G_ema'"),
        "discriminator-only": (discriminator_only.read_bytes(), "G.pkl", "no network object under 'G_ema'"),
        "mismatched-pkl": (mismatched.read_bytes(), "G.pkl", "weights that do not fit its config"),
        "wrong-shape-pt": (wrong_shape_pt, "G.pt", "synthesis.L3_36_32.weight [32, 32, 1, 1] (needs [32, 32, 3, 3])"),
        "foreign-safetensors": (foreign_safetensors, "G.safetensors", "without sg3pipe's metadata"),
        "encoder-checkpoint": (encoder, "G.pt", "not a generator state dict"),
    }


BAD_FILES = [
    "empty",
    "truncated-pkl",
    "truncated-pt",
    "truncated-safetensors",
    "png-as-pkl",
    "text-as-pkl",
    "text-as-pt",
    "dict-pickle",
    "discriminator-only",
    "mismatched-pkl",
    "wrong-shape-pt",
    "foreign-safetensors",
    "encoder-checkpoint",
]


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_fail_with_one_message(name, tmp_path, bad_files):
    data, filename, words = bad_files[name]
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(GeneratorFileError) as err:
        load_generator(path)
    message = str(err.value)
    assert message.startswith(f"generator file {path}: ")
    assert words in message
    assert "expected" in message
    # One message: no chained exception is printed beneath it.
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)


def test_missing_file_points_at_the_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pkl does not exist; set config `models.generator`"):
        load_generator(tmp_path / "nope.pkl")


def test_content_decides_the_format_not_the_extension(tmp_path, small_official_pkl):
    renamed = tmp_path / "G.pt"
    renamed.write_bytes(small_official_pkl.read_bytes())
    assert load_generator(renamed).source["format"] == "nvidia-pkl"
    G = make_generator("T", resolution=32)
    torch.save(G.state_dict(), tmp_path / "G.pkl")
    assert load_generator(tmp_path / "G.pkl").source["format"] == "editing-pt"


def test_numpy_values_in_recorded_arguments_become_plain(tmp_path):
    G = make_generator("T", resolution=32)
    path = write_official_pickle(tmp_path / "G.pkl", G, init_kwargs={**G.init_kwargs, "channel_base": np.int64(1024)})
    loaded = load_generator(path)
    assert type(loaded.init_kwargs["channel_base"]) is int
    save_generator(loaded, tmp_path / "G.safetensors")  # JSON metadata: fails on numpy scalars


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_a_pt_cut_anywhere_is_one_clear_error(tmp_path, fraction):
    path = tmp_path / "g.pt"
    torch.save(make_generator("T").state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(GeneratorFileError, match="g.pt"):
        load_generator(path)
