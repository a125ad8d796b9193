"""Landmark backends: dlib detector and predictor, the FAN adapter, landmark tables (sg3pipe.faces.landmarks)."""

import numpy as np
import pandas as pd
import pytest
import torch
from skimage import data

from sg3pipe.faces.landmarks import (
    FAN_CHECKPOINT,
    DlibPredictor,
    FanPredictor,
    HogDetector,
    ModelFileMissingError,
    decode_heatmaps,
    dlib_model_path,
    make_detector,
    make_predictor,
    read_landmark_table,
)
from sg3pipe.faces.tracking import iou


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


def test_dlib_models_ship_with_face_recognition_models():
    assert dlib_model_path("shape_predictor_68_face_landmarks.dat").stat().st_size > 90e6
    with pytest.raises(ModelFileMissingError, match="reinstall `face-recognition-models`"):
        dlib_model_path("no_such_model.dat")


def test_hog_and_dlib_predictor_find_the_astronaut(astronaut):
    found = HogDetector()(astronaut)
    assert found.boxes.shape == (1, 4) and found.scores[0] > 0.5
    landmarks = DlibPredictor()(astronaut, found.boxes)
    assert landmarks.shape == (1, 68, 2)
    x0, y0, x1, y1 = found.boxes[0]
    eyes = landmarks[0, 36:48]
    assert (eyes[:, 0] > x0).all() and (eyes[:, 0] < x1).all() and (eyes[:, 1] > y0).all()
    # the right eye (42-47) is right of the left eye (36-41) in the image
    assert eyes[6:, 0].mean() - eyes[:6, 0].mean() > 0.2 * (x1 - x0)
    assert not len(HogDetector()(np.full((200, 200, 3), 128, np.uint8)).boxes)


def test_mmod_detector_finds_the_astronaut(astronaut):
    found = make_detector("mmod")(astronaut[:256, 96:352])
    assert found.boxes.shape == (1, 4) and found.scores[0] > 0.5
    assert iou(found.boxes, np.array([73.0, 77.0, 177.0, 181.0]))[0] > 0.5  # HOG's box, in the crop (0.70)


def test_unknown_backend_names_fail():
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("sfd")
    with pytest.raises(ValueError, match="has no predictor"):
        make_predictor("table")


def test_fan_without_weights_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelFileMissingError) as error:
        FanPredictor()
    assert FAN_CHECKPOINT in str(error.value) and str(tmp_path / "hub" / "checkpoints") in str(error.value)
    assert not (tmp_path / "hub" / "checkpoints" / FAN_CHECKPOINT).exists()  # nothing was downloaded


def test_fan_adapter_runs_a_random_checkpoint_from_the_cache(tmp_path, monkeypatch, astronaut):
    from face_alignment.models import FAN

    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), cache / FAN_CHECKPOINT)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    box = np.array([[179.0, 83.0, 266.0, 170.0]])
    landmarks = make_predictor("face_alignment")(astronaut, box)
    assert landmarks.shape == (1, 68, 2) and np.isfinite(landmarks).all()
    # whatever random weights predict lies inside the package's crop window around the box
    side = (87 + 87) / 195 * 200
    centre = np.array([222.5, 126.5 - 0.12 * 87])
    assert (np.abs(landmarks[0] - centre) <= side / 2).all()


def test_heatmap_decoding_peak_and_quarter_pixel_shift():
    heatmaps = np.zeros((1, 2, 64, 64))
    heatmaps[0, 0, 10, 20] = 1.0  # x = 20, y = 10, no neighbours
    heatmaps[0, 1, 40, 30] = 1.0
    heatmaps[0, 1, 40, 31] = 0.5  # right neighbour higher: +0.25 in x
    heatmaps[0, 1, 39, 30] = 0.5  # upper neighbour higher: -0.25 in y
    xy = decode_heatmaps(heatmaps)[0]
    np.testing.assert_allclose(xy[0], (np.array([20.0, 10.0]) + 0.5) / 64 - 0.5)
    np.testing.assert_allclose(xy[1], (np.array([30.25, 39.75]) + 0.5) / 64 - 0.5)


def test_landmark_table_lookup(tmp_path):
    path = tmp_path / "lm.parquet"
    points = np.arange(3 * 136, dtype=np.float32).reshape(3, 136)
    pd.DataFrame({"frame": [5, 2, 9], "landmarks": list(points)}).to_parquet(path)
    out = read_landmark_table(path, np.array([2, 3, 5]))
    np.testing.assert_array_equal(out[0].reshape(-1), points[1])
    assert np.isnan(out[1]).all()
    np.testing.assert_array_equal(out[2].reshape(-1), points[0])
    pd.DataFrame({"frame": [1, 1], "landmarks": list(points[:2])}).to_parquet(path)
    with pytest.raises(ValueError, match="frame 1 appears twice"):
        read_landmark_table(path, np.array([1]))
    pd.DataFrame({"frame": [1], "landmarks": [np.zeros(10)]}).to_parquet(path)
    with pytest.raises(ValueError, match="68"):
        read_landmark_table(path, np.array([1]))
