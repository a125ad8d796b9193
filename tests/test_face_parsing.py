"""Paste-back masks from a face-parsing model: any TorchScript model with a short spec, dilated and feathered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sg3pipe.render.face_parsing import FaceParserFileError, FaceParserSpec, load_face_parser, region_mask

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class RedIsFace(torch.nn.Module):
    """A stand-in parser with BiSeNet's interface: normalised [B, 3, 32, 32] in, a tuple of logits out, class 1
    where the un-normalised red channel is above one half, class 0 elsewhere."""

    def forward(self, x):
        red = x[:, 0] * STD[0] + MEAN[0]
        logits = torch.stack([0.5 - red, red - 0.5], dim=1)
        return logits, torch.zeros_like(logits)


@pytest.fixture
def parser_file(tmp_path):
    path = tmp_path / "parser.pt"
    torch.jit.trace(RedIsFace(), torch.zeros(1, 3, 32, 32)).save(str(path))
    return path


def test_parser_resizes_normalises_and_picks_the_face_classes(parser_file):
    parser = load_face_parser({"path": str(parser_file), "input_size": 32, "face_classes": [1]})
    images = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    images[0, 16:48, 8:40, 0] = 255  # a red square in the first image, nothing in the second
    face = parser(images)
    assert face.shape == (2, 64, 64) and face.dtype == bool
    assert face[0, 20:44, 12:36].all() and not face[0, :12].any() and not face[0, :, 44:].any()
    assert not face[1].any()
    other = load_face_parser({"path": str(parser_file), "input_size": 32, "face_classes": [0]})
    assert (other(images) == ~face).all()
    assert load_face_parser(None) is None


def test_missing_and_wrong_files_are_one_clear_error(tmp_path):
    with pytest.raises(FaceParserFileError, match="does not exist.*face_parser to null"):
        load_face_parser({"path": str(tmp_path / "absent.pt")})
    (tmp_path / "weights.pth").write_bytes(b"not a model")
    with pytest.raises(FaceParserFileError, match="weights.pth is not a TorchScript file"):
        load_face_parser({"path": str(tmp_path / "weights.pth")})
    assert FaceParserSpec("x").face_classes == tuple(range(1, 14))  # BiSeNet's CelebAMask-HQ face classes


def test_region_mask_is_one_inside_the_dilation_and_zero_past_the_feather():
    face = np.zeros((2, 64, 64), dtype=bool)
    face[0, 24:40, 24:40] = True
    mask = region_mask(face, dilate_px=3.0, feather_px=6.0)
    assert mask.dtype == np.float32 and mask.shape == (2, 64, 64)
    row = mask[0, 32]
    assert (row[21:43] == 1).all()  # the square and 3 px around it
    assert (row[:15] == 0).all() and (row[49:] == 0).all()  # 3 + 6 px and more away
    assert (np.diff(row[:24]) >= 0).all() and 0 < row[18] < 1  # rises through the feather
    assert not mask[1].any()  # no face pixel: nothing is pasted
