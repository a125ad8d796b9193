"""A video's frames as one raw uint8 file on disk, read back by frame index.

A lossless video (FFV1) can only be read in order, but a consumer that draws random frames over and over (PTI's
batches) needs them by index. :meth:`FrameStore.from_video` decodes the video once, streaming, into a file of
``N x H x W x 3`` bytes; indexing the store then reads just the frames asked for, with plain file reads into a
new array. Nothing is memory-mapped, so what a process holds is the frames it asked for, whatever the length of
the video (the file's pages live in the operating system's cache, not in the process).

The file is a cache of the video in a job's working folder: :meth:`FrameStore.remove` (or leaving the ``with``
block) deletes it. It takes ``H * W * 3`` bytes of disk per frame (3 MiB at 1024 px).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sg3pipe.video.decode import read_frames


class FrameStore:
    """Frames ``[N, H, W, 3]`` uint8 in a raw file, indexed like an array: ``store[i]`` is ``[H, W, 3]``,
    ``store[indices]`` (int array, any order, repeats allowed) and ``store[start:stop]`` are ``[B, H, W, 3]``.
    Each index reads from the file; nothing is kept between reads.

    Args:
        path: the raw file (``N * H * W * 3`` bytes, frame after frame, rows of RGB pixels).
        shape: ``(N, H, W, 3)``.
    """

    dtype = np.dtype(np.uint8)

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int, int, int]):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 4 or self.shape[3] != 3:
            raise ValueError(f"shape: expected (N, H, W, 3), got {self.shape}")
        self.frame_bytes = self.shape[1] * self.shape[2] * 3
        size = self.path.stat().st_size
        if size != self.shape[0] * self.frame_bytes:
            raise ValueError(f"{self.path} holds {size} bytes, not the {self.shape[0]} frames of {self.shape[1:]}")
        self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close() or the with block

    @classmethod
    def from_video(cls, video: str | os.PathLike, path: str | os.PathLike, batch_size: int = 8) -> FrameStore:
        """Decode every frame of ``video`` (:func:`sg3pipe.video.decode.read_frames`, ``batch_size`` at a time)
        into the file ``path`` (replaced if it exists) and open it.

        Raises:
            VideoError: the video cannot be decoded (the partial file is deleted).
            ValueError: the video has no frame.
        """
        path = Path(path)
        count, size = 0, None
        try:
            with open(path, "wb") as out:
                for batch in read_frames(video, batch_size=batch_size):
                    size = batch.images.shape[1:]
                    out.write(memoryview(np.ascontiguousarray(batch.images)).cast("B"))
                    count += len(batch.images)
            if size is None:
                raise ValueError(f"{video} holds no frame")
            return cls(path, (count, *size))
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            return self[np.arange(len(self))[index]]
        if np.ndim(index) == 0:
            return self[np.array([index])][0]
        frames = np.asarray(index)
        if frames.ndim != 1 or not np.issubdtype(frames.dtype, np.integer):
            raise IndexError(f"index frames with an int, a slice or a 1-D int array, got {frames.dtype} {frames.shape}")
        out = np.empty((len(frames), *self.shape[1:]), dtype=np.uint8)
        for row, frame in zip(out, frames, strict=True):
            if not 0 <= frame < len(self):
                raise IndexError(f"frame {frame} is out of range for the {len(self)} frames of {self.path}")
            self._file.seek(int(frame) * self.frame_bytes)
            view = memoryview(row).cast("B")
            while view.nbytes:  # a raw read may return fewer bytes than asked
                got = self._file.readinto(view)
                if not got:
                    raise OSError(f"{self.path} ended inside frame {frame}")
                view = view[got:]
        return out

    def close(self) -> None:
        """Close the file (it stays on disk)."""
        self._file.close()

    def remove(self) -> None:
        """Close and delete the file."""
        self.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
