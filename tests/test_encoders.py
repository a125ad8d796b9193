"""ReStyle encoders: official names and math, official and sg3pipe checkpoint files, batched iterative inversion."""

from __future__ import annotations

import argparse
import pathlib
import pickle

import pytest
import safetensors.torch
import torch
from conftest import assert_close_to_scale
from generators import make_generator
from official_encoder_format import official_forward, official_shapes, write_official_checkpoint

from sg3pipe.networks.encoders import BackboneEncoder, infer_encoder_config, official_config
from sg3pipe.networks.loading import save_generator
from sg3pipe.networks.restyle import EncoderFileError, ReStyleEncoder, load_encoder, save_encoder

TYPES = ["BackboneEncoder", "ResNetBackboneEncoder", "ProgressiveBackboneEncoder", "ResNetProgressiveBackboneEncoder"]
# A small encoder of the official structure: 4 stages that each change the width but the first (as the official
# ones: the stage boundaries can be read from the weights), 32 x 32 input, so the heads see 2 x 2 maps; w_dim 32 as
# the test generators.
TINY = {"input_size": 32, "stage_units": [1, 2, 1, 1], "stage_widths": [8, 16, 24, 32], "se_reduction": 4}
# Tolerances as fractions of the largest magnitude of what is compared (tests/conftest.py:assert_close_to_scale),
# the worst errors measured with oneDNN limited to SSE4.1 and to AVX2, and ATen's kernels to plain C++, in brackets.
# The encoder against the official math, per predicted row [0: the same operations]:
TOL_ENCODER = 1e-5
# ReStyle passes in other batches or chunks, against the encoder and generator called directly [2.3e-6]; samples
# that leak into each other by 1e-3 of the batch mean measured 6.8e-5:
TOL_INVERT = 2e-5


def make_encoder(
    encoder_type: str = "ProgressiveBackboneEncoder", seed: int = 0, w_dim: int = 32, **overrides
) -> BackboneEncoder:
    """A tiny random encoder in eval mode; BatchNorm statistics and PReLU slopes are randomised so every term counts."""
    torch.manual_seed(seed)
    config = {**official_config(encoder_type, w_dim=w_dim), **TINY, **overrides}
    if config["backbone"] == "resnet":
        del config["se_reduction"]  # ResNet units have no SE gate
    enc = BackboneEncoder(**config).eval()
    with torch.no_grad():
        for name, t in enc.state_dict().items():
            if name.endswith("running_mean") or name.endswith(".bias"):
                t.normal_(0, 0.1)
            elif name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
        for module in enc.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
            elif isinstance(module, torch.nn.PReLU):
                module.weight.uniform_(0.0, 0.5)
    return enc


def make_restyle(encoder_type: str = "ProgressiveBackboneEncoder", seed: int = 0) -> ReStyleEncoder:
    G = make_generator("T", resolution=32, seed=seed)
    return ReStyleEncoder(make_encoder(encoder_type, seed), G, G.mapping.w_avg.clone()).eval()


@pytest.fixture(scope="module")
def restyle() -> ReStyleEncoder:
    return make_restyle()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1


# --- architecture: names, shapes and math of the official encoders -------------------------------------------


@pytest.mark.parametrize("encoder_type", TYPES)
def test_full_size_state_dict_equals_the_official_one(encoder_type):
    with torch.device("meta"):
        enc = BackboneEncoder(**official_config(encoder_type))
    found = {name: list(t.shape) for name, t in enc.state_dict().items()}
    expected = official_shapes(encoder_type)
    assert list(found) == list(expected)  # same names in the same order
    assert found == expected
    assert sum(name.endswith("res_layer.1.weight") or name.endswith("bn2.weight") for name in found) == (
        24 if "ResNet" not in encoder_type else 16
    )
    # The config read back from the names alone is the official one.
    assert infer_encoder_config(enc.state_dict(), encoder_type, 512, 16) == official_config(encoder_type)


@pytest.mark.parametrize("encoder_type", TYPES)
def test_forward_computes_the_official_math(encoder_type):
    enc = make_encoder(encoder_type, seed=3)
    x = torch.randn(3, 6, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = enc(x)
        expected = official_forward(enc.state_dict(), encoder_type, TINY["stage_units"], x)
    assert out.shape == (3, 16, 32)
    assert_close_to_scale(out, expected, TOL_ENCODER, dim=-1)  # per predicted row of W
    rows_differ = (out[:, 1:] - out[:, :1]).abs().amax(dim=2) > 1e-3
    assert rows_differ.all()  # every head contributes
    with pytest.raises(ValueError, match=r"encoder input: expected shape \[N, 6, 32, 32\]"):
        enc(torch.zeros(1, 6, 64, 64))


def test_e4e_rows_are_w0_plus_deltas():
    enc = make_encoder("ProgressiveBackboneEncoder", seed=4)
    x = torch.randn(2, 6, 32, 32)
    with torch.no_grad():
        features = enc.features(x)
        w0 = enc.styles[0](features)
        out = enc(x)
        assert torch.equal(out[:, 0], w0)
        assert torch.equal(out[:, 7], w0 + enc.styles[7](features))


# --- files ---------------------------------------------------------------------------------------------------


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("encoder_type", ["ProgressiveBackboneEncoder", "ResNetBackboneEncoder"])
def test_official_checkpoint_loads(tmp_path, encoder_type, images):
    enc = make_restyle(encoder_type, seed=6)
    path = write_official_checkpoint(
        tmp_path / "restyle.pt", enc.encoder, enc.decoder, enc.decoder.mapping.w_avg, encoder_type, batch_transform=2
    )
    loaded = load_encoder(path)
    assert loaded.source["format"] == "editing-pt" and loaded.source["path"] == str(path)
    assert not loaded.training
    assert loaded.encoder.init_kwargs == enc.encoder.init_kwargs
    assert_same_state(loaded, enc)  # latent_avg [w_dim] became [16, w_dim]; the batched transform the identity
    torch.testing.assert_close(loaded.invert(images[:2])[0], enc.invert(images[:2])[0], rtol=0, atol=0)


def test_opts_as_namespace_and_windows_paths_load(tmp_path, monkeypatch):
    """restyle-encoder keeps opts as an argparse Namespace; a checkpoint saved on Windows holds WindowsPath."""

    class WindowsPath:  # stands in for pathlib.WindowsPath, which cannot be made on Linux, while pickling
        def __init__(self, *parts):
            self.parts = parts

        def __reduce__(self):
            return type(self), self.parts

    WindowsPath.__module__, WindowsPath.__qualname__ = "pathlib", "WindowsPath"
    monkeypatch.setattr(pathlib, "WindowsPath", WindowsPath, raising=False)
    enc = make_restyle("BackboneEncoder", seed=7)
    opts = argparse.Namespace(encoder_type="BackboneEncoder", input_nc=6, checkpoint_path=WindowsPath("C:\\ckpt.pt"))
    path = write_official_checkpoint(tmp_path / "ns.pt", enc.encoder, enc.decoder, enc.latent_avg, "x", opts=opts)
    monkeypatch.undo()
    loaded = load_encoder(path)
    assert_same_state(loaded, enc)


def test_malicious_checkpoint_is_refused_without_running_it(tmp_path):
    canary = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return open, (str(canary), "w")

    enc = make_restyle("BackboneEncoder")
    opts = {"encoder_type": "BackboneEncoder", "input_nc": 6, "exp_dir": Payload()}
    path = write_official_checkpoint(tmp_path / "evil.pt", enc.encoder, enc.decoder, enc.latent_avg, "x", opts=opts)
    refusal = r"evil\.pt: refused to load: it asks for the global '(io|builtins)\.open'"
    with pytest.raises(EncoderFileError, match=refusal):
        load_encoder(path)
    assert not canary.exists()


def test_sg3pipe_format_round_trip(tmp_path, restyle, images):
    path = save_encoder(restyle, tmp_path / "enc.safetensors")
    loaded = load_encoder(path)
    assert loaded.source["format"] == "sg3pipe"
    assert loaded.encoder.init_kwargs == restyle.encoder.init_kwargs
    assert_same_state(loaded, restyle)
    # Saving a loaded encoder keeps where it came from.
    again = safetensors.safe_open(str(save_encoder(loaded, tmp_path / "again.safetensors")), "pt").metadata()
    assert str(path) in again["source"]
    # sg3pipe's files keep the config, so stages that keep their width (not readable from the weights) survive.
    G = make_generator("T", resolution=32)
    enc = ReStyleEncoder(make_encoder("ResNetBackboneEncoder", stage_widths=[8, 16, 16, 32]), G, G.mapping.w_avg)
    loaded = load_encoder(save_encoder(enc, tmp_path / "resnet.safetensors"))
    assert loaded.encoder.init_kwargs == enc.encoder.init_kwargs
    assert_same_state(loaded, enc)


def _official(tmp_path, name="bad.pt", **changes) -> pathlib.Path:
    """An official-format checkpoint of a tiny e4e encoder, with ``changes`` applied to its dict."""
    enc = make_restyle()
    path = write_official_checkpoint(
        tmp_path / name, enc.encoder, enc.decoder, enc.latent_avg[0], "ProgressiveBackboneEncoder"
    )
    ckpt = torch.load(path, weights_only=False)
    for key, change in changes.items():
        ckpt[key] = change(ckpt[key]) if callable(change) else change
    torch.save(ckpt, path)
    return path


def _write(tmp_path, data) -> pathlib.Path:
    """``data`` (bytes or an object for torch.save) written to ``bad.pt``."""
    path = tmp_path / "bad.pt"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        torch.save(data, path)
    return path


def _drop(key):
    return lambda sd: {k: v for k, v in sd.items() if k != key}


BAD_FILES = {
    "no state_dict": (lambda tmp: _official(tmp, state_dict=None), "with no 'state_dict'"),
    "no encoder": (
        lambda tmp: _official(tmp, state_dict=lambda sd: {k: v for k, v in sd.items() if k.startswith("decoder.")}),
        "without encoder.* weights",
    ),
    "missing head weight": (
        lambda tmp: _official(tmp, state_dict=_drop("encoder.styles.3.linear.weight")),
        "missing styles.3.linear.weight",
    ),
    "wrong shape": (
        lambda tmp: _official(tmp, state_dict=lambda sd: {**sd, "encoder.styles.2.linear.bias": torch.zeros(7)}),
        r"wrong shape styles.2.linear.bias \[7\] \(needs \[32\]\)",
    ),
    "missing decoder weight": (
        lambda tmp: _official(tmp, state_dict=_drop("decoder.synthesis.L3_36_32.affine.weight")),
        r"its decoder \(generator\) has weights that do not fit",
    ),
    "no latent_avg": (lambda tmp: _official(tmp, latent_avg=None), "no 'latent_avg' tensor"),
    "wrong latent_avg": (lambda tmp: _official(tmp, latent_avg=torch.zeros(5)), r"latent_avg: expected shape \[32\]"),
    "unknown encoder_type": (
        lambda tmp: _official(tmp, opts=lambda o: {**o, "encoder_type": "GradualStyleEncoder"}),
        "opts.encoder_type 'GradualStyleEncoder'",
    ),
    "no opts": (lambda tmp: _official(tmp, opts=None), "has no 'opts' dict"),
    "output size": (lambda tmp: _official(tmp, opts=lambda o: {**o, "output_size": 1024}), "opts.output_size = 1024"),
    "generator .pt": (lambda tmp: _write(tmp, make_generator().state_dict()), "is a generator state dict"),
    "sg3pipe generator": (
        lambda tmp: save_generator(make_generator(), tmp / "bad.safetensors"),
        "is an sg3pipe generator file, not an encoder",
    ),
    "tensor file": (lambda tmp: _write(tmp, torch.zeros(3)), "holding a Tensor"),
    "empty": (lambda tmp: _write(tmp, b""), "is empty"),
    "truncated": (
        lambda tmp: _write(tmp, _official(tmp, "good.pt").read_bytes()[:5000]),
        "truncated or corrupt torch file",
    ),
    "image": (lambda tmp: _write(tmp, b"\x89PNG\r\n\x1a\n" + bytes(100)), "is a PNG image"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_raise_one_clear_error(tmp_path, case):
    make, message = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(EncoderFileError, match=message) as info:
        load_encoder(path)
    assert str(info.value).startswith(f"encoder file {path}: ")
    assert "expected" in str(info.value)
    assert pickle.loads(pickle.dumps(info.value)).args == info.value.args


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt does not exist"):
        load_encoder(tmp_path / "nowhere.pt")


# --- inversion -----------------------------------------------------------------------------------------------


def test_invert_shapes_and_any_input_size(restyle, images):
    latents, recon = restyle.invert(images, n_iters=2)
    assert latents.shape == (5, 16, 32) and recon.shape == (5, 3, 32, 32)
    assert latents.dtype == recon.dtype == torch.float32
    # Larger aligned crops are average-pooled to the encoder's 32 x 32 first.
    big = images.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert_close_to_scale(restyle.invert(big, n_iters=2)[0], latents, TOL_INVERT, dim=-1)
    empty_latents, empty_recon = restyle.invert(images[:0])
    assert empty_latents.shape == (0, 16, 32) and empty_recon.shape == (0, 3, 32, 32)


@torch.no_grad()
def test_iterations_follow_restyle(restyle, images):
    G, E = restyle.decoder, restyle.encoder
    n = len(images)
    average = G.synthesis(restyle.latent_avg[None])
    w0, y0 = restyle.invert(images, n_iters=0)
    assert torch.equal(w0, restyle.latent_avg.expand(n, -1, -1))
    assert_close_to_scale(y0, average.expand(n, -1, -1, -1), TOL_INVERT, dim=(1, 2, 3))
    # Iteration t feeds (image, previous reconstruction) and adds the encoder's output to the previous latent.
    previous_w, previous_y = w0, y0
    for n_iters in (1, 2, 3):
        w, y = restyle.invert(images, n_iters=n_iters)
        step = E(torch.cat([images, previous_y], dim=1))
        assert_close_to_scale(w, previous_w + step, TOL_INVERT, dim=-1)
        assert_close_to_scale(y, G.synthesis(w), TOL_INVERT, dim=(1, 2, 3))
        assert (w - previous_w).abs().amax() > 1e-2  # the latent moved
        previous_w, previous_y = w, y


def test_batched_equals_one_at_a_time(restyle, images):
    batched = restyle.invert(images, n_iters=3)
    chunked = restyle.invert(images, n_iters=3, batch_size=2)
    singles = [restyle.invert(image[None], n_iters=3) for image in images]
    for i, (w, y) in enumerate(singles):
        assert_close_to_scale(batched[0][i], w[0], TOL_INVERT, dim=-1)
        assert_close_to_scale(batched[1][i], y[0], TOL_INVERT)
    assert_close_to_scale(batched[0], chunked[0], TOL_INVERT, dim=-1)


def test_transforms_render_the_last_iteration(restyle, images):
    angles = torch.linspace(0.1, 0.5, len(images))
    transforms = torch.zeros(len(images), 3, 3)
    transforms[:, 0, 0] = transforms[:, 1, 1] = angles.cos()
    transforms[:, 0, 1], transforms[:, 1, 0] = -angles.sin(), angles.sin()
    transforms[:, 0, 2], transforms[:, 2, 2] = torch.linspace(0.05, 0.15, len(images)), 1
    plain_w, plain_y = restyle.invert(images, n_iters=2)
    w, y = restyle.invert(images, n_iters=2, transforms=transforms, batch_size=2)  # chunks get their own rows
    assert_close_to_scale(w, plain_w, TOL_INVERT, dim=-1)  # transforms change the render, not the latents
    with torch.no_grad():
        expected = restyle.decoder.synthesis(w, transform=transforms)
    assert_close_to_scale(y, expected, TOL_INVERT, dim=(1, 2, 3))
    assert (y - plain_y).abs().amax(dim=(1, 2, 3)).min() > 1e-2
    shared = restyle.invert(images[:2], n_iters=1, transforms=transforms[1])[1]
    assert_close_to_scale(
        shared[0], restyle.invert(images[:1], n_iters=1, transforms=transforms[1:2])[1][0], TOL_INVERT
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": torch.zeros(2, 1, 32, 32)}, r"images: expected shape \[N, 3, N, N\]"),
        ({"transforms": torch.eye(3).repeat(3, 1, 1)}, r"transforms: expected shape \[3, 3\] or \[2, 3, 3\]"),
        ({"n_iters": -1}, "n_iters -1 must be >= 0"),
    ],
)
def test_invert_errors(restyle, kwargs, message):
    with pytest.raises(ValueError, match=message):
        restyle.invert(**{"images": torch.zeros(2, 3, 32, 32), **kwargs})


def test_parts_must_fit_together():
    G = make_generator("T", resolution=32)
    with pytest.raises(ValueError, match=r"encoder predicts \[16, 64\] but the generator takes \[16, 32\]"):
        ReStyleEncoder(make_encoder(w_dim=64), G, G.mapping.w_avg)
