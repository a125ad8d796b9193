"""Identity similarity of faces with dlib's 128-D face-recognition network (shipped by face-recognition-models).

dlib describes a face from a 150 x 150 "chip" cut the way ``dlib.get_face_chip`` cuts it from 68 landmarks.
sg3pipe's images are already FFHQ-aligned, so the chip is a fixed square of the aligned image: centred
:data:`CHIP_CENTRE`, side :data:`CHIP_SIDE` (unit coordinates of sg3pipe.transforms: origin at the image
centre, 1 = image width). That square was measured by mapping ``dlib.get_face_chip_details`` of detected faces
into their FFHQ quads: the astronaut photo (skimage) gave centre (0.007, 0.097), side 0.655, and eight synthetic
renderer faces centre (0.00 +- 0.01, 0.10 +- 0.01), side 0.64-0.72, angle within 1 degree. No landmarks are
detected here, so small aligned crops (64 px) that dlib could not find a face in still get a descriptor; they
are upsampled (bicubic) to the chip.

Similarity is the cosine of two descriptors: 1 for the same image. dlib's descriptors are not centred, so
different people still score about 0.9 (measured on the synthetic faces and the astronaut); what counts is
the difference from 1.
"""

from __future__ import annotations

import functools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

from sg3pipe.faces.landmarks import dlib_model_path

FACE_RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150  # side of dlib's face chip in pixels (what the network takes)
CHIP_CENTRE = (0.0, 0.10)  # centre of the chip in aligned-image unit coordinates (module docstring)
CHIP_SIDE = 0.66  # side of the chip in aligned-image widths


def face_chips(images: np.ndarray, transforms: np.ndarray | None = None) -> np.ndarray:
    """Cut dlib's face chip from FFHQ-aligned images, or from crops whose face an aligned image moved by a
    known similarity (the crops and renders of sg3pipe.render).

    Args:
        images: ``[N, S, S, 3]`` uint8 RGB faces, any side ``S``.
        transforms: ``[N, 3, 3]`` content-moving similarities (sg3pipe.transforms) that carry each aligned face
            into its image; None: the images are aligned.

    Returns:
        ``[N, 150, 150, 3]`` uint8 chips (bicubic resampling).
    """
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images: expected [N, S, S, 3] uint8 faces, got {list(images.shape)}")
    size = images.shape[1]
    if transforms is None:
        transforms = np.broadcast_to(np.eye(3), (len(images), 3, 3))
    # chip pixel j -> aligned unit coordinate u = origin + j * step -> image unit M @ u -> pixel (x + 0.5) * S - 0.5
    step = CHIP_SIDE / CHIP_SIZE
    chip_to_unit = np.array([[step, 0, 0], [0, step, 0], [0, 0, 1.0]])
    chip_to_unit[:2, 2] = [c - CHIP_SIDE / 2 + step / 2 for c in CHIP_CENTRE]
    unit_to_pixel = np.array([[size, 0, size / 2 - 0.5], [0, size, size / 2 - 0.5], [0, 0, 1.0]])
    sampling = unit_to_pixel @ np.asarray(transforms, dtype=np.float64) @ chip_to_unit  # [N, 3, 3]
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    return np.stack(
        [
            cv2.warpAffine(np.ascontiguousarray(image), matrix[:2], (CHIP_SIZE, CHIP_SIZE), flags=flags,
                           borderMode=cv2.BORDER_REFLECT_101)
            for image, matrix in zip(images, sampling, strict=True)
        ]
    )  # fmt: skip


@functools.cache
def _recognition_model(path: str):
    import dlib

    return dlib.face_recognition_model_v1(path)


class IdentityModel:
    """dlib's face-recognition ResNet, loaded from face-recognition-models' folder (found without importing the
    package, whose import fails with current setuptools).

    dlib's network runs on one core and holds Python's lock while it does, so ``workers`` > 1 shares each batch
    of chips out to that many worker processes (started on first use, each loading the model once); the
    descriptors are the same as with one. Use it as a context manager, or call :meth:`close`, to stop them.
    """

    def __init__(self, workers: int = 1):
        self.model_path = dlib_model_path(FACE_RECOGNITION_MODEL)
        self._model = _recognition_model(str(self.model_path))
        self.workers = max(1, int(workers))
        self._pool: ProcessPoolExecutor | None = None

    def descriptors(self, images: np.ndarray, transforms: np.ndarray | None = None) -> np.ndarray:
        """128-D descriptors of faces ``[N, S, S, 3]`` uint8 -> ``[N, 128]`` float64 (batched calls of dlib's
        network, one per worker); ``transforms`` as in :func:`face_chips` (None: aligned faces)."""
        if len(images) == 0:
            return np.empty((0, 128))
        chips = face_chips(images, transforms)
        parts = np.array_split(chips, min(self.workers, len(chips)))
        if len(parts) == 1:
            return _chip_descriptors(chips, str(self.model_path))
        if self._pool is None:
            # fork: spawn would re-run the caller's main module (a Snakemake script) in each worker. The workers
            # only run dlib and numpy, never torch, whose thread pools a fork leaves unusable in the child.
            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return np.concatenate(list(self._pool.map(_chip_descriptors, parts, [str(self.model_path)] * len(parts))))

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> IdentityModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity of the faces of ``a`` and ``b`` pair by pair: ``[N, S, S, 3]`` uint8 each (sides may
        differ between ``a`` and ``b``) -> ``[N]`` float64 in [-1, 1]."""
        if len(a) != len(b):
            raise ValueError(f"need as many faces in a as in b, got {len(a)} and {len(b)}")
        return descriptor_cosine(self.descriptors(a), self.descriptors(b))


def descriptor_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of descriptors pair by pair: ``[N, D]`` each -> ``[N]`` float64 in [-1, 1]."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _chip_descriptors(chips: np.ndarray, model_path: str) -> np.ndarray:
    """dlib descriptors of 150 x 150 chips ``[N, 150, 150, 3]`` uint8 -> ``[N, 128]`` float64 (one batched call;
    also the work of :class:`IdentityModel`'s worker processes, which load the model on their first call)."""
    described = _recognition_model(model_path).compute_face_descriptor(list(chips))
    return np.asarray(described, dtype=np.float64).reshape(len(chips), 128)
