"""StyleCLIP global directions: channel image directions, text directions, relevance thresholding, CLIP loading."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from generators import make_generator

from sg3pipe.editing.styleclip import (
    StyleClipSettings,
    channel_image_directions,
    global_direction,
    import_clip,
    load_clip,
    styleclip_directions,
    text_direction,
)
from sg3pipe.networks.stylespace import flatten_styles, render_flat_styles


def image_embedder(seed: int = 0, dim: int = 8):
    """A fixed image embedding for the tests (CLIP's place): a random projection of 4x4-pooled images."""
    projection = torch.randn(3 * 16, dim, generator=torch.Generator().manual_seed(seed))
    return lambda images: torch.nn.functional.adaptive_avg_pool2d(images, 4).flatten(1) @ projection


@pytest.fixture(scope="module")
def world():
    G = make_generator("T", resolution=16)
    ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(1)), None)
    ws[:, 0] = G.mapping.w_avg  # pseudo-aligned, as the function renders them
    flat = torch.from_numpy(flatten_styles(G.synthesis.styles(ws))[0])
    std = flat.std(0).numpy()
    std[5] = 0.0  # a constant channel
    return G, ws, flat, std


def test_channel_directions_equal_a_one_channel_at_a_time_reference(world):
    G, ws, flat, std = world
    embed = image_embedder()
    last = flat.shape[1] - 1
    wanted = np.array([0, 5, 17, last])  # the first, the constant one, a middle and the last (ToRGB) channel
    directions = channel_image_directions(G, ws, flat, std, embed, alpha=5.0, batch=4, channels=wanted)
    assert directions.shape == (flat.shape[1], 8)
    np.testing.assert_allclose(np.linalg.norm(directions[[0, 17, last]], axis=1), 1.0, rtol=1e-5)
    assert not np.delete(directions, [0, 17, last], 0).any()  # the constant and the skipped channels: zero
    for c in (0, 17, last):
        differences = []
        for i in range(len(ws)):
            plus, minus = flat[i : i + 1].clone(), flat[i : i + 1].clone()
            plus[0, c] += 5.0 * float(std[c])
            minus[0, c] -= 5.0 * float(std[c])
            with torch.no_grad():
                a = embed(render_flat_styles(G, ws[i : i + 1], plus))
                b = embed(render_flat_styles(G, ws[i : i + 1], minus))
            differences.append(torch.nn.functional.normalize(a - b, dim=1))
        expected = torch.nn.functional.normalize(torch.cat(differences).mean(0), dim=0).numpy()
        np.testing.assert_allclose(directions[c], expected, atol=2e-4)
    # the batch size only groups the renders
    again = channel_image_directions(G, ws, flat, std, embed, alpha=5.0, batch=64, channels=wanted)
    np.testing.assert_allclose(again, directions, atol=2e-4)


def test_global_direction_keeps_the_channels_above_beta_scaled_to_the_largest():
    rng = np.random.default_rng(0)
    text = np.array([1.0, 0.0, 0.0])
    channels = rng.normal(size=(10, 3))
    channels[:, 0] = 0.01  # little relevance everywhere ...
    channels[3, 0], channels[7, 0] = -0.6, 0.3  # ... but for two channels
    channels /= np.linalg.norm(channels, axis=1, keepdims=True)
    std = np.linspace(1.0, 2.0, 10)
    direction = global_direction(channels, text, std, beta=0.1)
    relevance = channels @ text
    assert direction.channels.tolist() == [3, 7]  # by decreasing |r|
    expected = np.zeros(10)
    expected[[3, 7]] = relevance[[3, 7]] / abs(relevance[3]) * std[[3, 7]]
    np.testing.assert_allclose(direction.delta, expected, rtol=1e-6)
    assert direction.delta[3] == pytest.approx(-std[3])  # the most relevant channel moves by one std
    with pytest.raises(ValueError, match="no channel reaches beta"):
        global_direction(channels, text, std, beta=0.99)
    with pytest.raises(ValueError, match=r"\[C, D\]"):
        global_direction(channels, text[:2], std, beta=0.1)


def test_text_direction_is_the_unit_difference_of_unit_embeddings():
    table = {"a face": torch.tensor([2.0, 0.0, 0.0]), "a smiling face": torch.tensor([0.0, 3.0, 0.0])}
    direction = text_direction(lambda texts: torch.stack([table[t] for t in texts]), "a face", "a smiling face")
    np.testing.assert_allclose(direction, np.array([-1.0, 1.0, 0.0]) / np.sqrt(2), rtol=1e-6)


def test_load_clip_names_the_missing_file_or_package(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="ViT-B-32.pt.*directions.styleclip"):
        load_clip(tmp_path / "ViT-B-32.pt")
    weights = tmp_path / "ViT-B-32.pt"
    weights.write_bytes(b"not read: the package is missing first")
    monkeypatch.setitem(sys.modules, "clip", None)  # as on a machine without the optional package
    with pytest.raises(ImportError, match="`clip` package.*clip-anytorch"):
        load_clip(weights)


def tiny_clip_file(path):
    """OpenAI's CLIP architecture (the ``clip`` package's own classes) at its smallest widths, random weights,
    saved as the state dict that ``clip.load`` reads: the real loading, tokenising and encoding code, in a test."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = import_clip().model.CLIP(
            embed_dim=16, image_resolution=224, vision_layers=1, vision_width=64, vision_patch_size=32,
            context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=1,
        )  # fmt: skip
    torch.save(model.state_dict(), path)
    return model.eval()


def test_real_clip_code_loads_a_weight_file_and_finds_a_text_direction(tmp_path):
    model = tiny_clip_file(tmp_path / "tiny-clip.pt")
    clip = load_clip(tmp_path / "tiny-clip.pt")
    # the stand-in for pkg_resources that clip's import may need is gone again (the real one has `require`)
    assert "pkg_resources" not in sys.modules or hasattr(sys.modules["pkg_resources"], "require")
    texts = ["a face", "a smiling face"]
    with torch.no_grad():
        expected = model.encode_text(import_clip().tokenize(texts)).float()
    got = clip.encode_texts(texts)
    assert got.shape == (2, 16)
    # clip.load stores the weights in float16 and, on the CPU, turns them back to float32
    assert torch.nn.functional.cosine_similarity(got, expected).min() > 0.999
    G = make_generator("T", resolution=16)
    z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(2))
    w = G.mapping(z, None)[:, 0]
    s = flatten_styles(G.synthesis.styles(w[:, None].repeat(1, G.num_ws, 1)))[0]
    settings = StyleClipSettings(clip="tiny-clip.pt", texts={"smile": texts}, beta=0.0, samples=1, batch=64)
    directions = styleclip_directions(G, clip, {"w": w.detach().numpy(), "s": s}, settings)
    smile = directions["smile"]
    assert smile.delta.shape == (s.shape[1],) and np.isfinite(smile.delta).all() and np.abs(smile.delta).max() > 0
