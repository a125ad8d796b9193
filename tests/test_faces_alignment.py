"""FFHQ quads, crop windows and quad warping (sg3pipe.faces.alignment)."""

import cv2
import numpy as np
import pytest

from sg3pipe.faces.alignment import (
    crop_window,
    ffhq_quad,
    quad_angle_deg,
    quad_axes,
    quad_sampling_matrix,
    quad_side,
    square_quad,
    warp_quad,
)


def upright_landmarks(eye_dist=40.0, mouth_drop=45.0, centre=(100.0, 100.0)):
    """68 points, eyes level: eye centres at centre -/+ (eye_dist/2, 0), mouth corners mouth_drop below."""
    lm = np.zeros((68, 2))
    cx, cy = centre
    lm[36:42] = (cx - eye_dist / 2, cy)
    lm[42:48] = (cx + eye_dist / 2, cy)
    lm[48] = (cx - 15, cy + mouth_drop)
    lm[54] = (cx + 15, cy + mouth_drop)
    return lm


def similarity(points, angle_deg, scale, shift):
    """Rotate counter-clockwise on screen (y down), scale and shift pixel points [..., 2]."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) * scale
    return points @ rot.T + shift


def test_upright_face_gives_axis_aligned_square_of_ffhq_size():
    quad = ffhq_quad(upright_landmarks(eye_dist=40, mouth_drop=45))
    centre, x, y = quad_axes(quad)
    # half-side max(2 * 40, 1.8 * 45) = 81; centre 0.1 * eye_to_mouth below the eyes
    np.testing.assert_allclose(x, [81, 0], atol=1e-9)
    np.testing.assert_allclose(y, [0, 81], atol=1e-9)
    np.testing.assert_allclose(centre, [100, 104.5], atol=1e-9)
    np.testing.assert_allclose(quad[0], [19, 23.5], atol=1e-9)  # top-left first, then bottom-left
    np.testing.assert_allclose(quad[1], [19, 185.5], atol=1e-9)


def test_editing_rule_ignores_the_mouth_distance():
    lm = upright_landmarks(eye_dist=40, mouth_drop=60)
    assert quad_side(ffhq_quad(lm, "ffhq")) == pytest.approx(2 * 1.8 * 60)
    assert quad_side(ffhq_quad(lm, "editing")) == pytest.approx(2 * 2 * 40)
    with pytest.raises(ValueError, match="quad rule"):
        ffhq_quad(lm, "other")


@pytest.mark.parametrize("angle", [-30.0, -7.5, 12.0, 45.0])
def test_quad_follows_a_similarity_of_the_face(angle):
    lm = upright_landmarks()
    moved = similarity(lm, angle, 1.3, np.array([17.0, -9.0]))
    np.testing.assert_allclose(ffhq_quad(moved), similarity(ffhq_quad(lm), angle, 1.3, [17.0, -9.0]), atol=1e-9)
    assert quad_angle_deg(ffhq_quad(moved)) == pytest.approx(angle)


def test_sampling_matrix_maps_output_edges_to_quad_corners():
    quad = similarity(square_quad([50.0, 60.0], 40.0) - [50, 60], 20.0, 1.0, [50.0, 60.0])
    a = quad_sampling_matrix(quad, 16)
    # The outer corner of output pixel (0, 0) is the point (-0.5, -0.5); the quad's first corner.
    for corner, q in zip([(-0.5, -0.5), (-0.5, 15.5), (15.5, 15.5), (15.5, -0.5)], quad, strict=True):
        np.testing.assert_allclose(a @ [*corner, 1.0], q, atol=1e-9)


def test_warp_of_the_whole_frame_at_its_size_is_the_frame():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    quad = square_quad([15.5, 15.5], 32.0)  # pixel centres 0..31: edges at -0.5 and 31.5
    np.testing.assert_array_equal(warp_quad(image, quad, 32), image)


def test_warp_rotates_content_as_the_quad_says():
    """A quad turned by 90 degrees reads the frame rotated: compare with numpy's exact rotation."""
    image = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    quad = square_quad([11.5, 11.5], 24.0)
    turned = np.roll(quad, -1, axis=0)  # top-left corner of the output now reads the frame's bottom-left
    np.testing.assert_array_equal(warp_quad(image, turned, 24), np.rot90(image, k=-1))


def test_downscaling_is_antialiased():
    """A 1-pixel checkerboard shrunk 5.5x must come out flat grey; plain bilinear sampling aliases."""
    board = ((np.indices((220, 220)).sum(axis=0) % 2) * 255).astype(np.uint8)
    image = np.repeat(board[..., None], 3, axis=2)
    quad = similarity(square_quad([0, 0], 176.0), 10.0, 1.0, [110, 110])
    ours = warp_quad(image, quad, 32).astype(float)
    naive = cv2.warpAffine(
        image, quad_sampling_matrix(quad, 32), (32, 32), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    ).astype(float)
    assert np.abs(ours - 127.5).max() < 6
    assert np.abs(naive - 127.5).max() > 40


def test_border_modes_outside_the_frame():
    image = np.full((20, 20, 3), 200, dtype=np.uint8)
    quad = square_quad([0.0, 0.0], 40.0)  # three quarters outside the frame
    assert warp_quad(image, quad, 20, "constant")[:5, :5].max() == 0
    assert warp_quad(image, quad, 20, "reflect")[:5, :5].min() == 200
    assert warp_quad(image, quad, 20, "edge")[:5, :5].min() == 200
    assert warp_quad(image, square_quad([500.0, 500.0], 40.0), 20).max() == 0  # entirely outside


def test_robust_crop_window_is_median_centre_and_quantile_side():
    centres = np.array([[100.0, 100.0], [102.0, 98.0], [98.0, 102.0], [400.0, 400.0], [101.0, 100.0]])
    sides = np.array([50.0, 52.0, 48.0, 300.0, 51.0])
    quads = np.stack([similarity(square_quad([0, 0], s), 15.0, 1.0, c) for c, s in zip(centres, sides, strict=True)])
    usable = np.array([True, True, True, True, True])
    window = crop_window(quads, usable)  # one outlier frame moves neither the centre nor the side
    np.testing.assert_allclose(quad_axes(window)[0], [101.0, 100.0])
    assert quad_side(window) == pytest.approx(51.0)
    assert quad_angle_deg(window) == pytest.approx(0.0)  # axis-aligned although the quads are turned
    assert quad_side(crop_window(quads, usable, quantile=1.0, margin=1.5)) == pytest.approx(450.0)


def test_crop_window_skips_unusable_frames_and_first_frame_rule():
    quads = np.stack([square_quad([10.0 * k, 0.0], 40.0 + k) for k in range(4)])
    quads[0] = np.nan
    usable = np.array([False, True, True, True])
    np.testing.assert_allclose(crop_window(quads, usable, "first_frame"), quads[1])
    np.testing.assert_allclose(quad_axes(crop_window(quads, usable))[0], [20.0, 0.0])
    with pytest.raises(ValueError, match="no usable frame"):
        crop_window(quads, np.zeros(4, bool))
    with pytest.raises(ValueError, match="crop mode"):
        crop_window(quads, usable, "frame0")
