"""Reconstruction metrics: dlib identity similarity on FFHQ-aligned crops, and LPIPS with a configured backbone."""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest
import skimage.data
import torch
import torchvision
from conftest import assert_close_to_scale

from sg3pipe.faces.alignment import ffhq_quad, warp_quad
from sg3pipe.faces.landmarks import SHAPE_PREDICTOR, HogDetector, dlib_model_path
from sg3pipe.metrics.identity import CHIP_SIZE, IdentityModel, face_chips
from sg3pipe.metrics.lpips_loader import LpipsWeightsError, load_lpips
from sg3pipe.pixels import to_uint8
from sg3pipe.synth.params import with_values
from sg3pipe.synth.renderer import render, sample_params
from sg3pipe.transforms import make_transform

# dlib's descriptors of a batch against one face at a time, as a fraction of each descriptor's largest element:
# measured 0 (dlib runs each face through the same network).
TOL_DLIB_BATCH = 2e-5


@pytest.fixture(scope="module")
def identity() -> IdentityModel:
    return IdentityModel()


@pytest.fixture(scope="module")
def astronaut():
    """The astronaut photo, dlib's landmarks of its face and its FFHQ quad."""
    image = skimage.data.astronaut()
    box = HogDetector(upsample=1)(image).boxes[0]
    predictor = dlib.shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR)))
    shape = predictor(image, dlib.rectangle(*np.rint(box).astype(int).tolist()))
    landmarks = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    return image, shape, ffhq_quad(landmarks)


def synthetic_faces(n: int, size: int) -> np.ndarray:
    """``n`` different renderer faces in the identity pose (FFHQ-aligned by construction), ``[n, size, size, 3]``."""
    params = with_values(sample_params(n, 0), angle_deg=0.0, tx=0.0, ty=0.0, scale=1.0)
    return to_uint8(render(params, size).images)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_fixed_chip_of_the_aligned_crop_matches_dlibs_own_face_chip(astronaut, identity):
    # dlib's descriptor of the face cut by its own 68-landmark alignment from the photo, vs the descriptor of
    # the fixed chip of the FFHQ-aligned crop: measured cosine 0.997 at 256 px, 0.975 at 64 px.
    image, shape, quad = astronaut
    reference = np.asarray(identity._model.compute_face_descriptor(image, shape))
    for size, least in ((256, 0.99), (64, 0.95)):
        aligned = warp_quad(image, quad, size)[None]
        assert face_chips(aligned).shape == (1, CHIP_SIZE, CHIP_SIZE, 3)
        assert cosine(identity.descriptors(aligned)[0], reference) > least


def test_identity_is_one_for_the_same_face_and_lower_for_different_people(astronaut, identity):
    image, _, quad = astronaut
    photo = warp_quad(image, quad, 64)[None]
    assert identity.similarity(photo, photo) == pytest.approx([1.0], abs=1e-6)
    d = identity.descriptors(np.concatenate([photo, synthetic_faces(3, 64)]))
    similarity = (d @ d.T) / np.outer(np.linalg.norm(d, axis=1), np.linalg.norm(d, axis=1))
    # Measured: the photo vs renderer faces 0.88-0.91; renderer faces among themselves 0.92-0.96.
    assert (similarity[0, 1:] < 0.95).all(), similarity
    assert (similarity[1:, 1:][~np.eye(3, dtype=bool)] < 0.985).all(), similarity


def test_identity_descriptors_of_a_batch_equal_one_at_a_time(identity):
    faces = synthetic_faces(3, 64)
    batch = identity.descriptors(faces)
    single = np.concatenate([identity.descriptors(face[None]) for face in faces])
    assert_close_to_scale(batch, single, TOL_DLIB_BATCH, dim=-1)  # per descriptor
    assert identity.descriptors(faces[:0]).shape == (0, 128)


def test_worker_processes_give_the_same_descriptors_in_order(identity):
    # three workers over five faces: uneven parts, each in its own process; the parts come back in order
    faces = synthetic_faces(5, 64)
    with IdentityModel(workers=3) as shared:
        np.testing.assert_array_equal(shared.descriptors(faces), identity.descriptors(faces))
        assert shared.descriptors(faces[:1]).shape == (1, 128)  # fewer faces than workers
    assert shared._pool is None  # the context stopped the workers


def test_identity_needs_pairs(identity):
    with pytest.raises(ValueError, match="as many faces"):
        identity.similarity(synthetic_faces(2, 32), synthetic_faces(1, 32))


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A torchvision AlexNet state dict (random weights) saved the way torchvision's weight files are."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("lpips") / "alexnet-owt-7be5be79.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def test_lpips_backbone_comes_from_the_configured_file(alexnet_file):
    model = load_lpips(alexnet_file, "alex")
    saved = torch.load(alexnet_file, weights_only=True)
    loaded = model.net.state_dict()
    assert len(loaded) == 10  # the five conv layers' weights and biases
    for key, t in loaded.items():
        index_and_param = key.split(".", 1)[1]  # slice{k}.{i}.weight -> {i}.weight
        torch.testing.assert_close(t, saved["features." + index_and_param], rtol=0, atol=0)
    # the calibrated linear layers are those shipped in the lpips package, not random ones
    import lpips

    shipped = torch.load(Path(lpips.__path__[0]) / "weights" / "v0.1" / "alex.pth", map_location="cpu")
    torch.testing.assert_close(model.lin0.model[1].weight, shipped["lin0.model.1.weight"])
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert model(x, x).abs().max().item() < 1e-6
    assert (model(x, x.flip(0)).flatten() > 0).all()
    assert not any(p.requires_grad for p in model.parameters())


def test_missing_lpips_file_is_one_error_naming_it_and_where_to_get_it(tmp_path):
    missing = tmp_path / "alexnet-owt-7be5be79.pth"
    with pytest.raises(FileNotFoundError) as err:
        load_lpips(missing, "alex")
    assert str(missing) in str(err.value)
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in str(err.value)
    assert "encode.lpips_weights" in str(err.value)


def test_lpips_file_of_the_wrong_backbone_or_not_a_state_dict_is_refused(tmp_path, alexnet_file):
    partial = tmp_path / "partial.pth"
    state_dict = torch.load(alexnet_file, weights_only=True)
    del state_dict["features.10.weight"]
    state_dict["features.8.bias"] = torch.zeros(3)
    torch.save(state_dict, partial)
    with pytest.raises(
        LpipsWeightsError, match="does not hold torchvision's alex weights.*features.8.bias, features.10"
    ):
        load_lpips(partial, "alex")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(LpipsWeightsError, match="not a readable torch file"):
        load_lpips(garbage, "alex")
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(LpipsWeightsError, match="not a state dict"):
        load_lpips(listed, "alex")


def test_chips_of_a_moved_face_match_the_chips_of_the_aligned_face():
    # The renderer draws the same faces aligned and moved by known similarities (exact under them); the chips cut
    # through those similarities match the aligned chips to within resampling (measured mean 0.94 levels at 128
    # px), while chips cut as if the moved faces were aligned differ by ~37 levels.
    params = with_values(sample_params(3, 1), angle_deg=0.0, tx=0.0, ty=0.0, scale=1.0)
    moves = make_transform([10.0, -15.0, 5.0], [0.08, -0.05, 0.0], [0.03, 0.06, -0.1])
    aligned = face_chips(to_uint8(render(params, 128).images)).astype(np.float64)
    moved = to_uint8(render(params, 128, moves).images)
    assert np.abs(face_chips(moved, moves) - aligned).mean() < 2.0
    assert np.abs(face_chips(moved) - aligned).mean() > 20.0
