"""The aligned-to-crop similarity and its meaning for rendering (sg3pipe.faces.crop_transforms)."""

import cv2
import numpy as np
import pytest
from skimage import data

from sg3pipe.faces.alignment import square_quad, warp_quad
from sg3pipe.faces.crop_transforms import aligned_to_crop, crop_transforms, quad_matrix, unit_to_pixel_matrix
from sg3pipe.transforms import make_transform


def turned_quad(centre, side, angle_deg):
    """A square quad turned counter-clockwise on screen by angle_deg about its centre."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    return (square_quad([0.0, 0.0], side) @ rot.T) + centre


def test_quad_matrix_maps_unit_corners_to_quad_corners():
    quad = turned_quad([40.0, 70.0], 30.0, 25.0)
    q = quad_matrix(quad)
    for u, corner in zip([(-0.5, -0.5), (-0.5, 0.5), (0.5, 0.5), (0.5, -0.5)], quad, strict=True):
        np.testing.assert_allclose((q @ [*u, 1.0])[:2], corner, atol=1e-9)


def test_parameters_of_known_quads():
    crop = square_quad([100.0, 100.0], 80.0)
    aligned = np.stack(
        [
            square_quad([100.0, 100.0], 80.0),  # the same square: identity
            turned_quad([100.0, 100.0], 80.0, 12.0),  # face turned 12 degrees counter-clockwise
            square_quad([120.0, 90.0], 40.0),  # face right and up, half the window's size
        ]
    )
    out = crop_transforms(aligned, crop, use_scale=True)
    np.testing.assert_allclose(out["angle_deg"], [0.0, 12.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(out["tx"], [0.0, 0.0, 0.25], atol=1e-12)
    np.testing.assert_allclose(out["ty"], [0.0, 0.0, -0.125], atol=1e-12)
    np.testing.assert_allclose(out["scale"], [1.0, 1.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(out["transform"][1], make_transform(12.0, 0.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(out["transform"][2], make_transform(0.0, 0.25, -0.125, 0.5), atol=1e-12)


def test_use_scale_off_keeps_rotation_and_translation_only():
    out = crop_transforms(turned_quad([110.0, 95.0], 60.0, -8.0)[None], square_quad([100.0, 100.0], 80.0))
    assert out["scale"][0] == pytest.approx(0.75)
    np.testing.assert_allclose(
        out["transform"][0], make_transform(out["angle_deg"][0], out["tx"][0], out["ty"][0]), atol=1e-12
    )


def test_unusable_frames_give_nan():
    aligned = np.stack([square_quad([0.0, 0.0], 10.0), np.full((4, 2), np.nan)])
    out = crop_transforms(aligned, square_quad([0.0, 0.0], 10.0))
    assert np.isfinite(out["transform"][0]).all() and np.isnan(out["transform"][1, :2]).all()
    assert np.isnan(out["angle_deg"][1])


@pytest.mark.parametrize(("angle", "centre", "side"), [(9.0, (230.0, 125.0), 190.0), (-14.0, (215.0, 140.0), 150.0)])
def test_moving_the_aligned_crop_by_m_reproduces_the_unaligned_crop(angle, centre, side):
    """The meaning the generator relies on: content at u of the aligned crop lies at M u in the crop.

    Warping the aligned crop by the content-moving M must give the unaligned crop wherever the aligned crop
    reaches; the inverse convention must not.
    """
    photo = data.astronaut()
    size = 128
    aligned_quad = turned_quad(np.array(centre), side, angle)
    crop_quad = square_quad([224.0, 128.0], 200.0)
    aligned = warp_quad(photo, aligned_quad, size)
    crop = warp_quad(photo, crop_quad, size)
    m = aligned_to_crop(aligned_quad[None], crop_quad)[0]

    def moved(matrix):
        return cv2.warpAffine(
            aligned, unit_to_pixel_matrix(matrix, size)[:2], (size, size), flags=cv2.INTER_LINEAR
        ).astype(float)

    reach = cv2.warpAffine(
        np.ones((size, size), np.uint8),
        unit_to_pixel_matrix(m, size)[:2],
        (size, size),
        flags=cv2.INTER_NEAREST,
    )
    inside = cv2.erode(reach, np.ones((5, 5), np.uint8)).astype(bool)
    assert inside.mean() > 0.3
    error = np.abs(moved(m) - crop)[inside].mean()
    wrong = np.abs(moved(np.linalg.inv(m)) - crop)[inside].mean()
    assert error < 4.0  # two resamplings of a 128-px image
    assert wrong > 8 * error


def test_generator_renders_the_aligned_latent_where_m_says():
    """G.synthesis(ws, transform=inverse(M)) is the aligned render moved by M (a small random R generator)."""
    import torch
    from generators import make_generator

    G = make_generator("R", resolution=64)
    ws = G.mapping(torch.randn(1, 32, generator=torch.Generator().manual_seed(0)))
    crop_quad = square_quad([100.0, 100.0], 80.0)
    m = crop_transforms(turned_quad(np.array([108.0, 95.0]), 80.0, 10.0)[None], crop_quad)["transform"][0]
    with torch.no_grad():
        aligned = G.synthesis(ws)[0].permute(1, 2, 0).numpy()
        crop = G.synthesis(ws, transform=torch.tensor(np.linalg.inv(m), dtype=torch.float32))[0]
    crop = crop.permute(1, 2, 0).numpy()

    def moved(matrix):
        return cv2.warpAffine(aligned, unit_to_pixel_matrix(matrix, 64)[:2], (64, 64), flags=cv2.INTER_LINEAR)

    reach = cv2.warpAffine(np.ones((64, 64), np.uint8), unit_to_pixel_matrix(m, 64)[:2], (64, 64), flags=0)
    inside = cv2.erode(reach, np.ones((7, 7), np.uint8)).astype(bool)
    error = np.abs(moved(m) - crop)[inside].mean()
    assert error < 0.1 * np.abs(moved(np.linalg.inv(m)) - crop)[inside].mean()  # measured 1e-4 vs 3e-2
