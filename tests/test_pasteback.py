"""Pasting edited crops back into their frames, and the landmark face mask (sg3pipe.render.pasteback)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sg3pipe.faces.alignment import ffhq_quad, quad_sampling_matrix, square_quad, warp_quad
from sg3pipe.render import pasteback
from sg3pipe.render.pasteback import (
    crop_sampling_matrix,
    face_mask,
    face_outline,
    frame_to_crop,
    paste_back,
)
from sg3pipe.synth.renderer import pixel_landmarks, render, sample_params
from sg3pipe.transforms import make_transform

R = 64  # crop side, as the shipped generator
# Frames of 128 x 128 px; faces at 0.55 of the frame (crop quads of ~80 px) under three poses.
POSES = {"angle_deg": [20.0, -15.0, 0.0], "tx": [0.08, -0.05, 0.0], "ty": [0.03, 0.06, 0.0], "scale": 0.55}
# Paste-back of an unedited crop, blurred frames (sigma 2 px, so the two resamplings lose little), inside the
# full mask: mean |error| measured 0.34 / 0.35 / 0.70 grey levels, max 3 / 3 / 4. The same with the quad moved by
# a quarter pixel: mean 1.18 / 1.33 / 2.20; by half a pixel: mean 2.3 / 2.6 / 4.3, max 11 / 12 / 19.
MEAN_ERROR_MAX = 1.0
MAX_ERROR_MAX = 8


def turned_quad(centre, side, angle_deg):
    """A square quad turned counter-clockwise on screen by angle_deg about its centre."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    return (square_quad([0.0, 0.0], side) @ rot.T) + centre


def smoothstep_mask(distance, dilate, feather):
    s = np.clip((distance - dilate) / feather, 0, 1)
    return 1 - s * s * (3 - 2 * s)


@pytest.fixture(scope="module")
def faces():
    """Three synthetic faces in 128 px frames: uint8 frames, landmarks, FFHQ quads and the face parameters."""
    params = sample_params(3, 0)
    m = make_transform(POSES["angle_deg"], POSES["tx"], POSES["ty"], POSES["scale"])
    out = render(params, 128, torch.as_tensor(m))
    frames = out.images.add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()
    landmarks = out.landmarks.double().numpy()
    return {"frames": frames, "landmarks": landmarks, "quads": ffhq_quad(landmarks), "params": params}


def warped_alpha(frame_shape, crop_quad, masks):
    """The mask as paste_back lays it on the frames, in [0, 1] (white crop pasted on black frames)."""
    b, size = masks.shape[0], masks.shape[1]
    black = np.zeros((b,) + frame_shape, dtype=np.uint8)
    white = np.full((b, size, size, 3), 255, dtype=np.uint8)
    return paste_back(black, white, crop_quad, masks)[..., 0] / 255.0


# --- mapping landmarks into the crop -------------------------------------------------------------------------


def test_sampling_matrix_is_the_one_warp_quad_uses():
    quads = np.stack([turned_quad([60.0, 40.0], 50.0, 33.0), square_quad([10.5, 20.0], 7.0)])
    batched = crop_sampling_matrix(quads, 16)
    for quad, a in zip(quads, batched, strict=True):
        np.testing.assert_allclose(a[:2], quad_sampling_matrix(quad, 16), atol=1e-12)
        np.testing.assert_allclose(a[2], [0, 0, 1])
    crop_points = np.array([[[0.0, 0.0], [15.0, 3.0], [7.5, 7.5]]] * 2)
    frame_points = np.einsum("bij,bkj->bki", batched[:, :2, :2], crop_points) + batched[:, None, :2, 2]
    np.testing.assert_allclose(frame_to_crop(frame_points, quads, 16), crop_points, atol=1e-9)


def test_landmarks_in_the_aligned_crop_are_the_aligned_render_landmarks(faces):
    """The renderer's identity pose is FFHQ-aligned: landmarks moved into each face's FFHQ crop must land where
    the renderer draws them in an aligned R x R image (up to the smile's shift of the quad centre)."""
    mapped = frame_to_crop(faces["landmarks"], faces["quads"], R)
    aligned = pixel_landmarks(faces["params"], R).double().numpy()
    assert np.abs(mapped - aligned).max() < 0.1  # measured 0.024 px


# --- the face mask --------------------------------------------------------------------------------------------


def test_mask_is_one_on_the_face_zero_far_away_and_falls_monotonically(faces):
    lm = frame_to_crop(faces["landmarks"], faces["quads"], R)
    masks = face_mask(lm, R, dilate_px=2.0, feather_px=4.0)
    assert masks.shape == (3, R, R) and masks.dtype == np.float32
    assert masks.min() == 0.0 and masks.max() == 1.0
    for mask, points in zip(masks, lm, strict=True):
        cx, cy = np.rint(points[30]).astype(int)  # the nose tip
        assert mask[cy, cx] == 1.0
        # All landmarks lie inside the hull (or on it): within the dilation.
        cols, rows = np.rint(points).astype(int).T
        assert (mask[rows, cols] == 1.0).all()
        # Along each of the four rays from the nose tip to the border the mask never rises, and reaches 0.
        for ray in (mask[cy, cx:], mask[cy, cx::-1], mask[cy:, cx], mask[cy::-1, cx]):
            assert (np.diff(ray) <= 1e-6).all()
        assert (mask[[0, 0, -1, -1], [0, -1, 0, -1]] == 0).all()  # the crop corners: far from the face


def test_mask_matches_opencv_distance_to_the_hull(faces):
    """Every pixel against an independent computation: OpenCV's signed distance to the convex hull."""
    lm = frame_to_crop(faces["landmarks"][:2], faces["quads"][:2], R)
    dilate, feather = 1.5, 5.0
    soft, hard = face_mask(lm, R, dilate, feather), face_mask(lm, R, dilate, 0.0)
    for points, soft_mask, hard_mask in zip(face_outline(lm), soft, hard, strict=True):
        hull = cv2.convexHull(points.astype(np.float32))
        distance = np.array(
            [[max(-cv2.pointPolygonTest(hull, (float(x), float(y)), True), 0.0) for x in range(R)] for y in range(R)]
        )
        np.testing.assert_allclose(soft_mask, smoothstep_mask(distance, dilate, feather), atol=1e-4)
        # Exactly 0 past the feather; exactly 1 within the dilation.
        assert (soft_mask[distance >= dilate + feather + 1e-3] == 0).all()
        assert (soft_mask[distance <= dilate - 1e-3] == 1).all()
        near_edge = np.abs(distance - dilate) < 1e-3  # float32 vs float64 distances may differ right at the edge
        np.testing.assert_array_equal(hard_mask[~near_edge], (distance <= dilate)[~near_edge])


def test_forehead_raises_the_top_of_the_mask(faces):
    lm = frame_to_crop(faces["landmarks"][2:], faces["quads"][2:], R)  # the upright face
    low, high = face_mask(lm, R, 0.0, 0.0, forehead=0.0), face_mask(lm, R, 0.0, 0.0, forehead=0.3)
    top = [np.flatnonzero(m.any(axis=1))[0] for m in (low[0], high[0])]
    brow_to_chin = lm[0, 8, 1] - lm[0, 17:27, 1].mean()
    assert top[0] - top[1] == pytest.approx(0.3 * brow_to_chin, abs=1.5)
    assert (high >= low).all()


def test_frames_without_landmarks_get_an_empty_mask(faces):
    lm = frame_to_crop(faces["landmarks"][:2], faces["quads"][:2], R)
    lm[1, 5] = np.nan
    masks = face_mask(lm, R, 2.0, 4.0)
    assert masks[0].max() == 1.0 and (masks[1] == 0).all()
    with pytest.raises(ValueError, match="68, 2"):
        face_mask(lm[:, :60], R, 2.0, 4.0)


# --- paste-back ------------------------------------------------------------------------------------------------


def test_pasting_the_unedited_crop_gives_back_the_frame(faces):
    """(a) crop = warp_quad(frame): inside the mask the frame comes back up to resampling; outside, exactly."""
    frames = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in faces["frames"]])
    quads = faces["quads"]
    crops = np.stack([warp_quad(f, q, R) for f, q in zip(frames, quads, strict=True)])
    masks = face_mask(frame_to_crop(faces["landmarks"], quads, R), R, 2.0, 4.0)
    pasted = paste_back(frames, crops, quads, masks)
    alpha = warped_alpha(frames.shape[1:], quads, masks)
    error = np.abs(pasted.astype(int) - frames.astype(int))
    for i in range(len(frames)):
        inside = alpha[i] > 0.999
        assert inside.sum() > 1000  # the face covers a good part of the frame (measured 1387 px and more)
        mean, worst = error[i][inside].mean(), error[i][inside].max()
        print(f"frame {i}: mean |error| {mean:.3f}, max {worst} grey levels inside the mask")
        assert mean <= MEAN_ERROR_MAX and worst <= MAX_ERROR_MAX
        np.testing.assert_array_equal(pasted[i][alpha[i] == 0], frames[i][alpha[i] == 0])


def test_whole_pixel_quad_round_trip_is_exact():
    """A quad on pixel edges at the crop's size: warp_quad copies pixels and paste-back puts them back unchanged."""
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    quad = square_quad([20.5, 15.5], 16.0)  # pixels 13..28 x 8..23
    crops = np.stack([warp_quad(f, quad, 16) for f in frames])
    np.testing.assert_array_equal(crops, frames[:, 8:24, 13:29])
    masks = rng.uniform(0, 1, (2, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(paste_back(frames, crops, quad, masks), frames)


def test_pixels_outside_the_mask_are_bit_identical():
    """(b) Random frames and crops: every frame pixel whose bilinear taps miss the mask is returned as it was."""
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (3, 90, 110, 3), dtype=np.uint8)
    crops = rng.integers(0, 256, (3, R, R, 3), dtype=np.uint8)
    quads = np.stack([turned_quad([55.0, 45.0], 70.0, a) for a in (0.0, 17.0, -40.0)])
    masks = np.zeros((3, R, R), dtype=np.float32)
    masks[:, 20:44, 16:40] = rng.uniform(1e-6, 1, (3, 24, 24))  # tiny values too: they still touch the frame
    pasted = paste_back(frames, crops, quads, masks)
    for i in range(3):
        # Crop position of every frame pixel; outside the bilinear footprint of the mask: > 1 px from its support.
        a = np.linalg.inv(crop_sampling_matrix(quads[i], R))
        rows, cols = np.mgrid[0:90, 0:110]
        x = a[0, 0] * cols + a[0, 1] * rows + a[0, 2]
        y = a[1, 0] * cols + a[1, 1] * rows + a[1, 2]
        away = (x < 15 - 1e-3) | (x > 40 + 1e-3) | (y < 19 - 1e-3) | (y > 44 + 1e-3)
        np.testing.assert_array_equal(pasted[i][away], frames[i][away])
        assert (pasted[i][~away] != frames[i][~away]).any()
    np.testing.assert_array_equal(paste_back(frames, crops, quads, np.zeros_like(masks)), frames)


@pytest.mark.parametrize("angle", [0.0, 30.0, -65.0])
def test_a_solid_crop_fills_exactly_its_quad(angle):
    """(c) A full mask: pixels well inside the (turned) quad take the colour, pixels well outside do not."""
    frames = np.random.default_rng(3).integers(0, 200, (1, 100, 128, 3), dtype=np.uint8)
    quad = turned_quad([70.0, 45.0], 52.0, angle)
    crop = np.full((1, R, R, 3), (255, 255, 255), dtype=np.uint8)
    pasted = paste_back(frames, crop, quad, np.ones((1, R, R), dtype=np.float32))[0]
    changed = (pasted != frames[0]).any(axis=-1)
    polygon = quad.astype(np.float32)[:, None]
    inside = np.array(
        [[cv2.pointPolygonTest(polygon, (float(x), float(y)), True) for x in range(128)] for y in range(100)]
    )
    assert (pasted[inside > 1.0] == 255).all()
    assert not changed[inside < -1.0].any()
    rows, cols = np.nonzero(changed)
    np.testing.assert_allclose([cols.mean(), rows.mean()], [70.0, 45.0], atol=0.1)  # measured 0.0


def test_the_face_mask_lands_on_the_face(faces):
    """(c) A solid crop under each face's mask: the changed pixels centre where the crop's mask centre maps to,
    cover the face's landmarks and leave the frame corners alone; one crop window or one per frame agree."""
    quads, frames = faces["quads"], faces["frames"]
    masks = face_mask(frame_to_crop(faces["landmarks"], quads, R), R, 2.0, 4.0)
    alpha = warped_alpha(frames.shape[1:], quads, masks)
    crops = np.zeros((3, R, R, 3), dtype=np.uint8)
    crops[..., 1] = 255  # pure green
    pasted = paste_back(frames, crops, quads, masks)
    for i in range(3):
        weights = np.abs(pasted[i].astype(int) - frames[i].astype(int)).sum(axis=-1)
        assert (weights[alpha[i] == 0] == 0).all()
        # The weighted centroid of the mask in the crop, mapped to the frame by the crop's sampling matrix.
        rows, cols = np.mgrid[0:R, 0:R]
        centre = crop_sampling_matrix(quads[i], R) @ [
            (masks[i] * cols).sum() / masks[i].sum(),
            (masks[i] * rows).sum() / masks[i].sum(),
            1.0,
        ]
        rows, cols = np.mgrid[0:128, 0:128]
        found = [(alpha[i] * cols).sum() / alpha[i].sum(), (alpha[i] * rows).sum() / alpha[i].sum()]
        np.testing.assert_allclose(found, centre[:2], atol=0.1)  # measured 0.008 px
        x, y = np.rint(faces["landmarks"][i]).astype(int).T
        np.testing.assert_array_equal(pasted[i][y, x], np.broadcast_to([0, 255, 0], (68, 3)))
    assert (pasted[:, [0, 0, -1, -1], [0, -1, 0, -1]] == frames[:, [0, 0, -1, -1], [0, -1, 0, -1]]).all()
    one_by_one = np.concatenate(
        [paste_back(frames[i : i + 1], crops[i : i + 1], quads[i], masks[i : i + 1]) for i in range(3)]
    )
    np.testing.assert_array_equal(one_by_one, pasted)


def test_frames_are_resampled_a_few_at_a_time_with_the_bytes_of_all_at_once(faces, monkeypatch):
    """paste_back's float buffers hold at most PASTE_CHUNK_PIXELS frame pixels under the quads (about 70 bytes
    each), however many frames it is given."""
    quads, frames = faces["quads"], faces["frames"]
    masks = face_mask(frame_to_crop(faces["landmarks"], quads, R), R, 2.0, 4.0)
    crops = np.random.default_rng(0).integers(0, 256, (3, R, R, 3), dtype=np.uint8)
    sizes = []
    blend = pasteback._blend
    monkeypatch.setattr(pasteback, "_blend", lambda source, *rest: sizes.append(source.shape) or blend(source, *rest))
    whole = paste_back(frames, crops, quads, masks)
    box = sizes[0][1] * sizes[0][2]
    monkeypatch.setattr(pasteback, "PASTE_CHUNK_PIXELS", 2 * box)
    np.testing.assert_array_equal(paste_back(frames, crops, quads, masks), whole)
    assert [shape[0] for shape in sizes] == [3, 2, 1]


def test_quads_outside_the_frame_and_bad_shapes():
    frames = np.zeros((1, 20, 20, 3), dtype=np.uint8)
    crops, masks = np.full((1, 8, 8, 3), 255, np.uint8), np.ones((1, 8, 8), np.float32)
    np.testing.assert_array_equal(paste_back(frames, crops, square_quad([100.0, 100.0], 8.0), masks), frames)
    with pytest.raises(ValueError, match="crops"):
        paste_back(frames, crops[:, :4], square_quad([5.0, 5.0], 8.0), masks)
    with pytest.raises(ValueError, match="masks"):
        paste_back(frames, crops, square_quad([5.0, 5.0], 8.0), masks[:, :4])
