"""The StyleGAN3 generator: fast ops equal the reference math, transforms behave, gradients flow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_close_to_scale
from generators import make_generator

from sg3pipe.networks import ops, reference_ops
from sg3pipe.networks.filters import synthesis_schedule
from sg3pipe.transforms import make_transform, synthesis_transform

# Tolerances as fractions of the largest magnitude of what is compared (tests/conftest.py:assert_close_to_scale);
# the worst errors measured with oneDNN limited to SSE4.1 and to AVX2, and ATen's kernels to plain C++, are in
# brackets. One op against the reference [5.9e-7]:
TOL_OP = 2e-5
# Whole 32x32 images (per image) against the reference, another batch or another order of transforms [2.5e-6]:
TOL_SYNTHESIS = 5e-5
# The gradient of W, per row, against the reference's: the leaky ReLUs and clamps make it jump where an activation
# lies within rounding of a kink, so it differs between CPUs by more than rounding. Measured: 2.4e-6 with AVX2,
# 1.9e-6 with SSE4.1, 4.9e-5 with ATen's plain C++ kernels, 6.6e-4 on an AVX-512 EPYC; moving ws and the weights
# by 1-16 float32 ulps (a stand-in for another CPU's rounding, 60 draws) moved it by up to 2.1e-3, always in the
# row of the smallest gradients (the input layer's). One filter tap 1% off moves it by 0.19, a style gradient 1%
# off by 1.1e-2.
TOL_GRADIENT = 5e-3
# Element-wise math only (bias, clamp, gain; lerp): a few ulps at most [8e-8].
TOL_ELEMENTWISE = 1e-6


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 2.0) -> float:
    """PSNR in dB for images in [-1, 1] (peak-to-peak 2), as StyleGAN3's equivariance metrics use."""
    mse = (a - b).double().square().mean().item()
    return 10 * np.log10(peak**2 / mse)


def random_ws(G, n: int, seed: int = 1, psi: float = 1.0) -> torch.Tensor:
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    return G.mapping(z, truncation_psi=psi, truncation_cutoff=8)


@torch.no_grad()
def test_fast_ops_equal_reference_math(generator):
    ws = random_ws(generator, 3, psi=0.7)
    transform = torch.as_tensor(synthesis_transform([0.0, 17.0, -40.0], [0.0, 0.11, -0.2], [0.0, -0.05, 0.3]))
    fast = generator.synthesis(ws, transform=transform)
    reference = generator.synthesis(ws, transform=transform, impl="reference")
    assert fast.shape == (3, 3, 32, 32) and fast.is_contiguous()  # NCHW, whatever layout the ops compute in
    assert fast.std() > 0.05  # the images are not flat, so the comparison means something
    assert_close_to_scale(fast, reference, TOL_SYNTHESIS, dim=(1, 2, 3))


@pytest.mark.parametrize(
    ("grad_mode", "grad"), [(False, False), (True, False), (True, True)], ids=["no-grad", "grad-mode", "autograd"]
)
@pytest.mark.parametrize(("kernel", "padding"), [(3, 2), (3, 1), (3, 0), (1, 0)])
@pytest.mark.parametrize("demodulate", [True, False], ids=["demodulated", "to-rgb"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("weight_grad_channels", [1, 10**6], ids=["matmul-weight-grad", "onednn-weight-grad"])
def test_modulated_conv2d_equals_the_reference(
    monkeypatch, grad_mode, grad, kernel, padding, demodulate, batch, weight_grad_channels
):
    # The scaled input is written into a zero-bordered tensor for an unpadded convolution; the weight gradient is
    # matrix products over shifted rows of that tensor when there are enough channels (set low here), else oneDNN's.
    monkeypatch.setattr(ops, "MATMUL_WEIGHT_GRAD_CHANNELS", weight_grad_channels)
    g = torch.Generator().manual_seed(kernel * 10 + padding)
    x = torch.randn(batch, 6, 9, 11, generator=g).requires_grad_(grad)
    weight = torch.randn(5, 6, kernel, kernel, generator=g).requires_grad_(grad)
    styles = torch.randn(batch, 6, generator=g).requires_grad_(grad)
    gain = torch.tensor(0.7)
    with torch.set_grad_enabled(grad_mode):
        fast = ops.modulated_conv2d(x, weight, styles, demodulate, gain, padding)
        reference = reference_ops.modulated_conv2d(x, weight, styles, demodulate, gain, padding)
    assert fast.shape == reference.shape == (batch, 5, 9 + 2 * padding - kernel + 1, 11 + 2 * padding - kernel + 1)
    assert_close_to_scale(fast, reference, TOL_OP)
    if grad:
        out_grad = torch.randn(reference.shape, generator=g)
        fast_grads = torch.autograd.grad(fast, [x, weight, styles], out_grad)
        reference_grads = torch.autograd.grad(reference, [x, weight, styles], out_grad)
        for name, fast_grad, reference_grad in zip(["x", "weight", "styles"], fast_grads, reference_grads, strict=True):
            assert_close_to_scale(fast_grad, reference_grad, TOL_OP, msg=name)


@pytest.mark.parametrize(
    ("grad_mode", "grad"), [(False, False), (True, False), (True, True)], ids=["no-grad", "grad-mode", "autograd"]
)
@pytest.mark.parametrize("radial", [False, True], ids=["separable", "radial"])
@pytest.mark.parametrize(
    ("up", "down", "padding"),
    [
        (2, 2, [5, 4, 6, 3]),
        (2, 2, [-3, -4, 2, 7]),
        (4, 2, [9, 8, 9, 8]),
        (4, 2, [-6, -9, -5, -8]),
        (2, 1, [0, 1, 3, 2]),
        (1, 1, [2, 1, 3, 0]),
    ],
)
@pytest.mark.parametrize("clamp", [0.9, 1e3], ids=["clamped", "clamp-out-of-reach"])
def test_filtered_lrelu_in_pieces_equals_the_reference(monkeypatch, grad_mode, grad, radial, up, down, padding, clamp):
    # Pieces small enough to split the batch, then each sample into bands of rows; odd and even, positive and
    # negative paddings move the polyphase components' alignment; up 4 / down 2 interleaves phases. A clamp out of
    # reach is skipped and the leaky ReLU fused into the upsampling; a reachable one is applied.
    monkeypatch.setattr(ops, "CHUNK_BYTES", 1000)
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 9, 11, generator=rng, requires_grad=grad)
    fu, b = torch.rand(4 * up, generator=rng) if up > 1 else None, torch.randn(5, generator=rng)
    fd = torch.rand(8, 8, generator=rng) if radial else torch.rand(8, generator=rng)
    args = (fu, fd, b, up, down, padding, 1.4, 0.2, clamp)
    with torch.set_grad_enabled(grad_mode):  # grad mode with nothing to track: in pieces, like no-grad
        fast = ops.filtered_lrelu(x, *args)
    reference = reference_ops.filtered_lrelu(x, *args)
    assert fast.shape == reference.shape
    assert_close_to_scale(fast, reference, TOL_OP)
    if grad:
        out_grad = torch.randn(reference.shape, generator=rng)
        (fast_grad,) = torch.autograd.grad(fast, x, out_grad)
        (reference_grad,) = torch.autograd.grad(reference, x, out_grad)
        assert_close_to_scale(fast_grad, reference_grad, TOL_OP)


@pytest.mark.parametrize("clamp", [1.2, 2.0, 2.7], ids=["reached", "applied-out-of-reach", "skipped"])
def test_a_clamp_is_skipped_only_when_out_of_reach(clamp):
    # Peak input 2.6 and an up filter whose phases each sum to 1: the skip's bound is 2.6, the largest upsampled
    # value 1.48. A clamp at 1.2 clamps; at 2.0 it is applied and changes nothing; at 2.7 it is skipped.
    x = torch.randn(2, 4, 6, 7, generator=torch.Generator().manual_seed(3))
    x = x * (2.6 / x.abs().max())
    args = (torch.ones(4) / 4, torch.ones(4) / 4, torch.zeros(4), 2, 2, [3, 3, 3, 3], 1.5, 0.2, clamp * 1.5)
    fast, reference = ops.filtered_lrelu(x, *args), reference_ops.filtered_lrelu(x, *args)
    assert_close_to_scale(fast, reference, TOL_OP)


def test_fused_depthwise_passes_equal_the_separate_ops():
    # On the CPU the leaky ReLU and the running sum ride on oneDNN's convolution (post-operations).
    rng = torch.Generator().manual_seed(4)
    x, addend = (torch.randn(2, 16, 9, 12, generator=rng).contiguous(memory_format=torch.channels_last) for _ in "xa")
    taps = torch.randn(3, 4, generator=rng)
    plain = torch.nn.functional.conv2d(x, taps.expand(16, 1, 3, 4).contiguous(), groups=16)
    addend = addend[:, :, :7, :9].contiguous(memory_format=torch.channels_last)
    assert_close_to_scale(ops._fir(x, taps, slope=0.2), torch.nn.functional.leaky_relu(plain, 0.2), TOL_OP)
    expected = plain + addend
    assert_close_to_scale(ops._fir(x, taps, addend=addend.clone()), expected, TOL_OP)
    assert_close_to_scale(ops._fir(x[:1], taps, addend=addend[:1].clone()), expected[:1], TOL_OP)
    # The sum is accumulated into the addend itself (a running sum nothing else reads), under autograd too.
    result = ops._fir(x, taps, addend=addend)
    assert_close_to_scale(result, expected, TOL_OP)
    assert ops._POINTWISE_INTO is None or result.data_ptr() == addend.data_ptr()
    total = addend.clone().requires_grad_(True)
    source = x.clone().requires_grad_(True)
    running = total * 2.0  # a non-leaf running sum, as in the phase sums
    ops._fir(source, taps, addend=running).square().sum().backward()
    assert_close_to_scale(total.grad, 4.0 * (plain + 2.0 * addend), TOL_OP)


def test_filtered_lrelu_without_filters_is_bias_clamp_and_gain():
    # ToRGB's form: no resampling, no filter; the gain scales after the clamp (clamp at 0.9 of gain * x).
    x = torch.randn(2, 4, 6, 7, generator=torch.Generator().manual_seed(1))
    b = torch.randn(4, generator=torch.Generator().manual_seed(2))
    args = (None, None, b, 1, 1, [1, 0, -1, 2], 1.5, 1.0, 0.9)
    fast = ops.filtered_lrelu(x, *args)
    assert_close_to_scale(fast, reference_ops.filtered_lrelu(x, *args), TOL_ELEMENTWISE)


@torch.no_grad()
def test_batched_transforms_equal_one_at_a_time(generator):
    ws = random_ws(generator, 4)
    transforms = torch.as_tensor(synthesis_transform([0, 10, 20, -30], [0, 0.1, -0.1, 0.2], [0, 0.05, 0.0, -0.1]))
    batched = generator.synthesis(ws, transform=transforms)
    for i in range(4):
        single = generator.synthesis(ws[i : i + 1], transform=transforms[i])
        assert_close_to_scale(batched[i], single[0], TOL_SYNTHESIS)


@torch.no_grad()
def test_no_transform_uses_the_identity_buffer(generator):
    ws = random_ws(generator, 2)
    assert torch.equal(generator.synthesis(ws), generator.synthesis(ws, transform=np.eye(3)))


@pytest.mark.parametrize("shift", [1, 3])
@torch.no_grad()
def test_integer_pixel_translation_shifts_a_T_image(shift):
    res = 64
    G = make_generator("T", resolution=res, seed=3)
    ws = random_ws(G, 2)
    base = G.synthesis(ws)
    moved = G.synthesis(ws, transform=synthesis_transform(0.0, shift / res, -shift / res))  # right and up
    border = 8
    expected = base[:, :, shift + border : res - border, border : res - shift - border]
    got = moved[:, :, border : res - shift - border, shift + border : res - border]
    value = psnr(got, expected)
    print(f"translation by {shift} px: PSNR {value:.1f} dB")
    assert value > 60  # measured 86 dB (random weights, 64x64 T)


@torch.no_grad()
def test_rotation_by_90_degrees_turns_an_R_image_counter_clockwise():
    res = 64
    G = make_generator("R", resolution=res, seed=4)
    ws = random_ws(G, 2)
    base = G.synthesis(ws)
    turned = G.synthesis(ws, transform=synthesis_transform(90.0, 0.0, 0.0))
    counter_clockwise = torch.rot90(base, 1, dims=(2, 3))
    clockwise = torch.rot90(base, -1, dims=(2, 3))
    centre = slice(12, res - 12)
    ccw, cw = (psnr(turned[:, :, centre, centre], ref[:, :, centre, centre]) for ref in (counter_clockwise, clockwise))
    print(f"R rotation 90 deg: PSNR {ccw:.1f} dB against counter-clockwise, {cw:.1f} dB against clockwise")
    assert ccw > 25 and ccw > cw + 10


@torch.no_grad()
def test_rotations_compose():
    a, b = 12.0, -31.0
    composed = make_transform(a, 0.1, 0.0) @ make_transform(b, 0.0, -0.2)
    assert np.allclose(np.linalg.inv(composed), synthesis_transform(b, 0.0, -0.2) @ synthesis_transform(a, 0.1, 0.0))
    assert np.allclose(make_transform(a, 0, 0) @ make_transform(b, 0, 0), make_transform(a + b, 0, 0))
    G = make_generator("R", seed=5)
    ws = random_ws(G, 2)
    one_go = G.synthesis(ws, transform=synthesis_transform(a + b, 0, 0))
    two_steps = G.synthesis(ws, transform=synthesis_transform(b, 0, 0) @ synthesis_transform(a, 0, 0))
    assert_close_to_scale(one_go, two_steps, TOL_SYNTHESIS, dim=(1, 2, 3))


@torch.no_grad()
def test_stylespace_round_trip(generator):
    ws = random_ws(generator, 2)
    styles = generator.synthesis.styles(ws)
    assert list(styles) == ["input", *generator.synthesis.layer_names]
    assert styles["input"].shape == (2, 4) and torch.allclose(styles["input"][:, :2].norm(dim=1), torch.ones(2))
    transform = synthesis_transform(5.0, 0.02, 0.0)
    assert torch.equal(
        generator.synthesis(styles=styles, transform=transform), generator.synthesis(ws, transform=transform)
    )
    # One channel only: scaling a whole layer's style vector is undone by weight demodulation.
    name = generator.synthesis.layer_names[3]
    edited = {**styles, name: styles[name] + 3 * torch.eye(styles[name].shape[1])[0]}
    assert not torch.allclose(generator.synthesis(styles=edited), generator.synthesis(styles=styles))


def test_stylespace_of_official_r1024_has_9894_channels():
    _, layers = synthesis_schedule(1024, 3, channel_base=65536, channel_max=1024)
    assert 4 + sum(layer.in_channels for layer in layers) == 9894
    assert [layer.name for layer in layers][-3:] == ["L12_1044_64", "L13_1024_64", "L14_1024_3"]


@torch.no_grad()
def test_mapping_truncation():
    G = make_generator("T")
    z = torch.randn(3, G.z_dim)
    ws = G.mapping(z)
    assert ws.shape == (3, 16, G.w_dim) and torch.equal(ws[:, 0], ws[:, 15])
    truncated = G.mapping(z, truncation_psi=0.5, truncation_cutoff=4)
    assert_close_to_scale(truncated[:, :4], G.mapping.w_avg.lerp(ws[:, :4], 0.5), TOL_ELEMENTWISE, dim=-1)
    assert torch.equal(truncated[:, 4:], ws[:, 4:])
    average = G.mapping.w_avg.expand(3, 16, -1)
    assert_close_to_scale(G.mapping(z, truncation_psi=0.0), average, TOL_ELEMENTWISE, dim=-1)


def test_gradients_flow_to_latents_weights_and_transform(generator):
    generator.requires_grad_(True)
    z = torch.randn(2, generator.z_dim)
    ws = generator.mapping(z).detach().requires_grad_(True)
    transform = torch.as_tensor(synthesis_transform(7.0, 0.03, -0.02), dtype=torch.float32).requires_grad_(True)
    generator.synthesis(ws, transform=transform).square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    assert transform.grad is not None and transform.grad.abs().sum() > 0
    missing = [n for n, p in generator.synthesis.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    generator.zero_grad()
    generator(z).mean().backward()
    assert all(p.grad is not None for p in generator.mapping.parameters())


def test_gradients_match_the_reference_math():
    G = make_generator("T", seed=6)
    ws = random_ws(G, 2).detach()
    grads = []
    for impl in ("fast", "reference"):
        w = ws.clone().requires_grad_(True)
        G.synthesis(w, transform=synthesis_transform(10.0, 0.05, 0.0), impl=impl).sin().sum().backward()
        grads.append(w.grad)
    assert_close_to_scale(grads[0], grads[1], TOL_GRADIENT, dim=-1)  # per row of W


@torch.no_grad()
def test_fp16_is_ignored_on_the_cpu(generator):
    ws = random_ws(generator, 1)
    assert torch.equal(generator.synthesis(ws, fp16=True), generator.synthesis(ws))


def test_bad_shapes_fail_clearly(generator):
    with pytest.raises(ValueError, match=r"ws: expected shape \[N, 16, 32\]"):
        generator.synthesis(torch.zeros(1, 15, 32))
    with pytest.raises(ValueError, match="transform"):
        generator.synthesis(torch.zeros(1, 16, 32), transform=torch.eye(2))
    with pytest.raises(ValueError, match="z: expected"):
        generator.mapping(torch.zeros(1, 7))
