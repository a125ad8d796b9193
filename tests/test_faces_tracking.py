"""Following one face through frames (sg3pipe.faces.tracking), on the astronaut photo moved in memory."""

import numpy as np
import pandas as pd
import pytest
from skimage import data

from sg3pipe.faces.alignment import ffhq_quad, quad_angle_deg, quad_axes, quad_side
from sg3pipe.faces.landmarks import DlibPredictor, HogDetector
from sg3pipe.faces.tracking import FaceTracker, iou, read_face_track
from sg3pipe.synth.photo_clip import camera_path, photo_landmarks, render_frames
from sg3pipe.transforms import make_transform, pixel_to_unit, unit_to_pixel


@pytest.fixture(scope="module")
def models():
    return HogDetector(), DlibPredictor()


@pytest.fixture(scope="module")
def still():
    photo = data.astronaut()
    return photo, photo_landmarks(photo)


def moved(still, matrices):
    """Frames [N, 512, 512, 3] of the photo moved by content-moving unit matrices, and their landmarks."""
    photo, landmarks = still
    frames = np.stack(list(render_frames(photo, matrices, 512)))
    unit = pixel_to_unit(landmarks, 512)
    truth = unit_to_pixel(np.einsum("nij,kj->nki", matrices[:, :2, :2], unit) + matrices[:, None, :2, 2], 512)
    return frames, truth


def quad_errors(found, truth):
    """Per frame: roll error (degrees) and centre error (% of the quad side) of the FFHQ quads."""
    q, t = ffhq_quad(found), ffhq_quad(truth)
    angle = np.abs(quad_angle_deg(q) - quad_angle_deg(t))
    centre = np.linalg.norm(quad_axes(q)[0] - quad_axes(t)[0], axis=-1) / quad_side(t) * 100
    return angle, centre


def test_tracker_follows_the_moving_camera_with_one_detection(models, still):
    cam = camera_path(100, 25.0)
    pick = slice(0, 100, 4)
    matrices = make_transform(cam["angle_deg"][pick], cam["tx"][pick], cam["ty"][pick], cam["scale"][pick])
    frames, truth = moved(still, matrices)
    tracker = FaceTracker(*models, redetect_every=0)
    found = [tracker.update(frame) for frame in frames]
    assert all(f.landmarks is not None for f in found)
    assert tracker.detections == 1 and tracker.region_detections == len(frames)
    angle, centre = quad_errors(np.stack([f.landmarks for f in found]), truth)
    # measured: median 0.17 degrees, 0.10 %
    assert np.median(angle) < 0.5 and np.median(centre) < 0.5
    assert all(f.n_faces == 1 for f in found)


def test_upright_search_region_follows_a_roll_hog_cannot_see(models, still):
    """Whole-frame HOG loses the face past about 35 degrees of roll; the tracker's upright region does not."""
    angles = np.arange(0.0, 61.0, 4.0)
    frames, truth = moved(still, make_transform(angles, 0.0, 0.0, 1.0))
    detector, predictor = models
    assert not len(detector(frames[-1]).boxes)
    tracker = FaceTracker(detector, predictor)
    found = [tracker.update(frame) for frame in frames]
    assert all(f.landmarks is not None for f in found)
    angle, _ = quad_errors(np.stack([f.landmarks for f in found]), truth)
    assert np.median(angle) < 0.5  # measured 0.17


def test_lost_face_is_found_again_by_whole_frame_detection(models, still):
    frames, _ = moved(still, make_transform(np.zeros(9), 0.0, 0.0))
    frames[3:6] = 128
    tracker = FaceTracker(*models, redetect_every=0)
    found = [tracker.update(frame) for frame in frames]
    assert [f.landmarks is not None for f in found] == [True] * 3 + [False] * 3 + [True] * 3
    assert [f.detected for f in found] == [True, False, False, True, True, True, True, False, False]
    assert tracker.detections == 5  # first frame, each faceless frame, the face's return


def test_with_two_faces_the_track_stays_on_its_face(models, still):
    photo, _ = still
    alone = np.full((512, 1024, 3), 128, np.uint8)
    alone[:, :512] = photo
    both = alone.copy()
    both[:, 512:] = photo[:, ::-1]  # a mirrored second astronaut on the right
    empty = np.full_like(alone, 128)
    frames = [alone, alone, both, both, both, empty, both, both]
    tracker = FaceTracker(*models, redetect_every=2)
    found = [tracker.update(frame) for frame in frames]
    lost = [f.landmarks is None for f in found]
    assert lost == [False] * 5 + [True] + [False] * 2
    assert all(f.box[2] < 512 for f, gone in zip(found, lost, strict=True) if not gone)  # always the left one
    assert [f.n_faces for f in found] == [1, 1, 2, 2, 2, 0, 2, 2]  # counted at frames 2, 4, 6


def test_iou():
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(iou(boxes, np.array([0.0, 0.0, 10.0, 10.0])), [1.0, 1 / 3, 0.0])


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".tsv"])
def test_face_track_files(tmp_path, suffix):
    table = pd.DataFrame({"frame": [0, 2], "x0": [1.0, 2.0], "y0": [3.0, 4.0], "x1": [5.0, 6.0], "y1": [7.0, 8.0]})
    path = tmp_path / f"track{suffix}"
    if suffix == ".parquet":
        table.to_parquet(path)
    else:
        table.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    boxes = read_face_track(path)
    assert sorted(boxes) == [0, 2]
    np.testing.assert_array_equal(boxes[2], [2.0, 4.0, 6.0, 8.0])
    table.drop(columns="y1").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"lacks columns \['y1'\]"):
        read_face_track(tmp_path / "bad.parquet")
