"""The procedural face renderer: parameters, determinism, exact transforms, landmarks, canonical alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sg3pipe.faces.alignment import ffhq_quad
from sg3pipe.synth import renderer
from sg3pipe.synth.params import (
    LATENT_PARAMS,
    NUM_LATENT,
    NUM_PARAMS,
    PARAM_NAMES,
    POSE_NAMES,
    params_from_normal,
    sample_params,
    with_values,
)
from sg3pipe.synth.renderer import attribute_labels, canonical_landmarks, pixel_landmarks, pose_matrices, render
from sg3pipe.transforms import make_transform, pixel_shift, transform_params, unit_to_pixel


def random_faces(n: int, seed: int) -> torch.Tensor:
    """Random faces with random poses (angle +-30 degrees, shift +-0.1, scale 0.7-1.3)."""
    g = torch.Generator().manual_seed(seed)
    params = sample_params(n, g)
    pose = {
        "angle_deg": torch.empty(n).uniform_(-30, 30, generator=g),
        "tx": torch.empty(n).uniform_(-0.1, 0.1, generator=g),
        "ty": torch.empty(n).uniform_(-0.1, 0.1, generator=g),
        "scale": torch.empty(n).uniform_(0.7, 1.3, generator=g),
    }
    return with_values(params, **pose)


def extreme_faces() -> torch.Tensor:
    """Every latent parameter at its low end, at its high end, and alternating, with glasses on."""
    low = torch.tensor([p.low for p in LATENT_PARAMS])
    high = torch.tensor([p.high for p in LATENT_PARAMS])
    mixed = torch.where(torch.arange(NUM_LATENT) % 2 == 0, low, high)
    latents = torch.stack([low, high, mixed, torch.where(torch.arange(NUM_LATENT) % 2 == 1, low, high)])
    params = torch.cat([latents, torch.tensor([[0.0, 0.0, 0.0, 1.0]]).expand(4, -1)], dim=1)
    return with_values(params, glasses=1.0)


def to_unit_rgb(images: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` in [-1, 1] -> ``[N, H, W, 3]`` float64 in [0, 1]."""
    return ((images.double() + 1) / 2).permute(0, 2, 3, 1).numpy()


def test_parameter_layout_is_documented_data():
    assert len(PARAM_NAMES) == len(set(PARAM_NAMES)) == NUM_PARAMS
    assert PARAM_NAMES[-4:] == list(POSE_NAMES)
    required = {
        "face_width",
        "skin_tone",
        "hair_lightness",
        "hair_length",
        "brow_thickness",
        "eye_colour",
        "eye_openness",
        "smile",
        "mouth_open",
        "glasses",
        "bg_red",
    }
    assert required <= set(PARAM_NAMES)
    assert all(p.low < p.high and p.doc for p in LATENT_PARAMS)
    with pytest.raises(ValueError, match="shape"):
        render(torch.zeros(2, NUM_PARAMS - 1), 16)


def test_render_output_shapes_ranges_and_determinism():
    params = random_faces(5, seed=0)
    out = render(params, 48)
    assert out.images.shape == (5, 3, 48, 48) and out.images.dtype == torch.float32
    assert out.landmarks.shape == (5, 68, 2) and out.landmarks.dtype == torch.float32
    assert out.images.min() >= -1 and out.images.max() <= 1
    assert set(out.labels) >= {"smiling", "glasses", "eyes_closed", "dark_hair", "mouth_open"}
    assert all(v.dtype == torch.bool and v.shape == (5,) for v in out.labels.values())
    again = render(params.clone(), 48)
    assert torch.equal(out.images, again.images) and torch.equal(out.landmarks, again.landmarks)
    assert not torch.equal(render(random_faces(5, seed=1), 48).images, out.images)


def test_sample_params_is_seeded_and_prefix_stable():
    assert torch.equal(sample_params(6, 3), sample_params(6, 3))
    assert torch.equal(sample_params(20, 3)[:6], sample_params(6, 3))
    assert not torch.equal(sample_params(6, 3), sample_params(6, 4))
    assert torch.equal(sample_params(4, 3)[:, -4:], torch.tensor([[0.0, 0.0, 0.0, 1.0]]).expand(4, -1))


def test_params_from_normal_stays_in_range_and_labels_cover_20_to_80_percent():
    u = torch.randn(4096, NUM_LATENT, generator=torch.Generator().manual_seed(0))
    params = params_from_normal(u)
    low = torch.tensor([p.low for p in LATENT_PARAMS])
    high = torch.tensor([p.high for p in LATENT_PARAMS])
    assert ((params[:, :NUM_LATENT] >= low) & (params[:, :NUM_LATENT] <= high)).all()
    for name, value in attribute_labels(params).items():
        assert 0.2 <= value.float().mean() <= 0.8, name
    # Glasses are mostly fully on or off, so the label matches what is drawn.
    glasses = params[:, PARAM_NAMES.index("glasses")]
    assert ((glasses < 0.05) | (glasses > 0.95)).float().mean() > 0.7
    assert torch.equal(params_from_normal(u), params)
    with pytest.raises(ValueError, match="shape"):
        params_from_normal(torch.zeros(3, NUM_LATENT + 1))


def composed(params: torch.Tensor, transform: np.ndarray) -> torch.Tensor:
    """``params`` with each pose replaced by ``transform @ pose``, through the parameter decomposition."""
    angle, tx, ty, scale = transform_params(transform @ pose_matrices(params).numpy())
    pose = {"angle_deg": angle, "tx": tx, "ty": ty, "scale": scale}
    return with_values(params, **{k: torch.from_numpy(v).float() for k, v in pose.items()})


@pytest.mark.parametrize("resolution", [32, 80])
def test_render_under_transform_equals_render_with_composed_pose(resolution):
    params = random_faces(6, seed=2)
    g = np.random.default_rng(0)
    transforms = make_transform(
        g.uniform(-40, 40, 6), g.uniform(-0.2, 0.2, 6), g.uniform(-0.2, 0.2, 6), g.uniform(0.6, 1.4, 6)
    )
    moved = render(params, resolution, transform=transforms)
    direct = render(composed(params, transforms), resolution)
    assert (moved.images - direct.images).abs().max() < 1e-4
    assert (moved.landmarks - direct.landmarks).abs().max() < 1e-3
    # One [3, 3] matrix applies to the whole batch, and torch matrices are accepted too.
    shared = render(params, resolution, transform=torch.from_numpy(transforms[0]))
    assert (shared.images - render(composed(params, transforms[0]), resolution).images).abs().max() < 1e-4


def test_integer_pixel_shift_moves_the_image_by_whole_pixels():
    params = random_faces(3, seed=3)
    base = render(params, 64)
    shifted = render(params, 64, transform=pixel_shift(5, -3, 64))
    # Content moves right by 5 and up by 3 pixels: compare where both images have content.
    assert (shifted.images[:, :, :-3, 5:] - base.images[:, :, 3:, :-5]).abs().max() < 1e-4
    assert (shifted.landmarks - base.landmarks - torch.tensor([5.0, -3.0])).abs().max() < 1e-3


def test_positive_angle_turns_content_counter_clockwise_on_screen():
    params = random_faces(2, seed=4)
    base = render(params, 40)
    turned = render(params, 40, transform=make_transform(90.0, 0.0, 0.0))
    # np.rot90 turns an image counter-clockwise as displayed (rows down, columns right).
    expected = torch.from_numpy(np.rot90(base.images.numpy(), k=1, axes=(2, 3)).copy())
    assert (turned.images - expected).abs().max() < 1e-4


def test_resolution_only_changes_sampling():
    params = random_faces(4, seed=5)
    fine = torch.nn.functional.avg_pool2d(render(params, 192).images, 3)
    coarse = render(params, 64).images
    mse = ((fine - coarse) ** 2).mean() / 4  # images span 2 units
    # Measured 34 dB (33-36 over seeds): the same picture through different anti-aliasing footprints. Moving
    # the fine render by a third of a coarse pixel drops it to 30 dB.
    assert 10 * torch.log10(1 / mse) > 31.5


def test_small_feature_regions_hold_everything_they_paint(monkeypatch):
    # Faces near the ends of every range (u ~ 3 N(0, I)), at small scales too (wider anti-aliasing ramps).
    u = 3 * torch.randn(96, NUM_LATENT, generator=torch.Generator().manual_seed(1))
    params = torch.cat([extreme_faces(), params_from_normal(u)])
    params = with_values(params, scale=torch.linspace(0.25, 1.2, len(params)))
    culled = render(params, 48).images
    monkeypatch.setattr(renderer, "_REGIONS", {name: (0.0, 10.0, 0.0, 10.0) for name in renderer._REGIONS})
    assert (render(params, 48).images - culled).abs().max() < 1e-5


def test_identity_pose_faces_are_ffhq_aligned():
    params = torch.cat([sample_params(64, 7), extreme_faces()])
    for resolution in (64, 1024):
        quad = ffhq_quad(pixel_landmarks(params, resolution).numpy())
        square = np.array([[0, 0], [0, 1], [1, 1], [1, 0]]) * resolution - 0.5  # outer edges of the image
        assert np.abs(quad - square).max() < 0.01 * resolution


def test_posed_faces_align_to_their_pose():
    params = random_faces(16, seed=11)
    corners = np.array([[-0.5, -0.5, 1], [-0.5, 0.5, 1], [0.5, 0.5, 1], [0.5, -0.5, 1]])
    expected = unit_to_pixel((corners @ pose_matrices(params).numpy().transpose(0, 2, 1))[..., :2], 256)
    quad = ffhq_quad(pixel_landmarks(params, 256).numpy())
    assert np.abs(quad - expected).max() < 0.01 * 256


def test_expressions_and_identity_keep_the_eye_centres_fixed():
    params = torch.cat([sample_params(32, 8), extreme_faces()])
    points = canonical_landmarks(params).numpy()
    for eye, x in ((slice(36, 42), -renderer.EYE_X), (slice(42, 48), renderer.EYE_X)):
        assert np.abs(points[:, eye].mean(1) - [x, renderer.EYE_Y]).max() < 1e-5
    blink = canonical_landmarks(with_values(params, eye_openness=0.0)).numpy()
    assert np.abs(blink[:, 36:48].mean(1) - points[:, 36:48].mean(1)).max() < 1e-5
    assert np.abs(blink[:, [37, 38, 43, 44], 1] - blink[:, [41, 40, 47, 46], 1]).max() < 1e-4  # lids meet
    corners = points[:, [48, 54]]
    assert np.abs(corners[..., 1] - renderer.MOUTH_Y).max() <= renderer.SMILE_LIFT / 2 + 1e-6


def test_landmarks_lie_on_the_drawn_features():
    n, resolution = 12, 256
    params = with_values(sample_params(n, 9), eye_openness=1.0, glasses=0.0, skin_tone=0.1, hair_length=0.0)
    out = render(params, resolution)
    images = to_unit_rgb(out.images)
    # Plain skin: the lower cheek, away from blush, folds and the face outline.
    cheek = unit_to_pixel(np.array([[0.16, 0.17], [-0.16, 0.17]]), resolution).round().astype(int)
    skin = images[:, cheek[:, 1], cheek[:, 0]].mean(1)

    def colour_at(points: np.ndarray) -> np.ndarray:
        xy = points.round().astype(int)
        return images[np.arange(n)[:, None], xy[..., 1], xy[..., 0]]

    # Mean |RGB - skin| summed over channels at each group's landmarks; measured: eyes 1.1, brows 1.8,
    # outer lips 0.43, inner lips 1.0, nose base 0.36 (the bridge, which is only shading: 0.06).
    landmarks = out.landmarks.numpy()
    for name, group, threshold in (
        ("eyes", slice(36, 48), 0.6),
        ("brows", slice(17, 27), 0.9),
        ("outer lips", slice(48, 60), 0.2),
        ("inner lips", slice(60, 68), 0.5),
        ("nose base", slice(31, 36), 0.18),
    ):
        difference = np.abs(colour_at(landmarks[:, group]) - skin[:, None]).sum(-1)
        assert difference.mean() > threshold, name
    # Jaw 4..12 sit on the face outline: shaded skin 3 px inside (measured 0.26 from the cheek's colour), the
    # neck's shadow or the background 3 px outside (measured 0.83 from the inside, at least 0.6).
    jaw = landmarks[:, 4:13]
    centre = unit_to_pixel(np.array([0.0, renderer.FACE_Y0]), resolution)
    normal = (jaw - centre) / np.linalg.norm(jaw - centre, axis=-1, keepdims=True)
    inside, outside = colour_at(jaw - 3 * normal), colour_at(jaw + 3 * normal)
    assert np.abs(inside - skin[:, None]).sum(-1).mean() < 0.45
    assert np.abs(outside - inside).sum(-1).min() > 0.35


def test_blinks_close_the_eyes_and_mouth_opening_shows_inside():
    params = with_values(sample_params(6, 10), glasses=0.0, eye_openness=1.0, mouth_open=0.0, smile=0.0)
    eye = unit_to_pixel(np.array([renderer.EYE_X, renderer.EYE_Y]), 128).round().astype(int)
    inner = canonical_landmarks(with_values(params, mouth_open=1.0))
    below_teeth = inner[:, 62] + 0.8 * (inner[:, 66] - inner[:, 62])
    mouth = unit_to_pixel(below_teeth.numpy(), 128).round().astype(int)

    def at(images, xy):
        return to_unit_rgb(images)[np.arange(len(xy)), xy[..., 1], xy[..., 0]]

    open_eyes = at(render(params, 128).images, np.broadcast_to(eye, (6, 2)))
    closed = at(render(with_values(params, eye_openness=0.0), 128).images, np.broadcast_to(eye, (6, 2)))
    assert (np.abs(open_eyes - closed).sum(-1) > 0.3).all()
    shut = at(render(params, 128).images, mouth)
    opened = at(render(with_values(params, mouth_open=1.0), 128).images, mouth)
    assert (opened.sum(-1) < shut.sum(-1) - 0.3).all()  # the dark inside of the mouth
