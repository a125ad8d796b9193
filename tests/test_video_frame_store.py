"""sg3pipe.video.frame_store: a lossless video decoded once into a raw file gives back exactly its frames, by any
index, and leaves no file behind when it is done or when the decode fails."""

from __future__ import annotations

import numpy as np
import pytest

from sg3pipe.video.decode import read_all_frames
from sg3pipe.video.errors import VideoError
from sg3pipe.video.frame_store import FrameStore
from sg3pipe.video.writer import write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A lossless 11-frame 24x40 clip of distinct frames, and its frames as decoded."""
    path = tmp_path_factory.mktemp("clip") / "crops.mkv"
    frames = np.random.default_rng(0).integers(0, 256, (11, 24, 40, 3), dtype=np.uint8)
    write_video(path, frames, 25.0, codec="lossless")
    return path, read_all_frames(path)


def test_the_store_holds_the_decoded_frames_and_reads_any_of_them_by_index(clip, tmp_path):
    path, frames = clip
    with FrameStore.from_video(path, tmp_path / "frames.u8", batch_size=4) as store:
        assert len(store) == 11 and store.shape == (11, 24, 40, 3) and store.dtype == np.uint8
        assert (tmp_path / "frames.u8").stat().st_size == frames.nbytes
        np.testing.assert_array_equal(store[np.arange(11)], frames)
        picks = np.array([7, 0, 7, 10, 3])  # any order, repeats
        np.testing.assert_array_equal(store[picks], frames[picks])
        np.testing.assert_array_equal(store[2:9:3], frames[2:9:3])
        np.testing.assert_array_equal(store[5], frames[5])
        assert store[np.array([], dtype=np.int64)].shape == (0, 24, 40, 3)
        with pytest.raises(IndexError, match="frame 11 is out of range"):
            store[np.array([3, 11])]
        with pytest.raises(IndexError):
            store[np.array([0.5])]
    assert not (tmp_path / "frames.u8").exists()


def test_a_failed_decode_leaves_no_file(tmp_path):
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(b"not a video")
    with pytest.raises(VideoError):
        FrameStore.from_video(broken, tmp_path / "frames.u8")
    assert not (tmp_path / "frames.u8").exists()


def test_a_file_of_the_wrong_size_is_refused(tmp_path):
    (tmp_path / "frames.u8").write_bytes(bytes(100))
    with pytest.raises(ValueError, match="holds 100 bytes"):
        FrameStore(tmp_path / "frames.u8", (2, 4, 4, 3))
