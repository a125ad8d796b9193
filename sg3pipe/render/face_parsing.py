"""Face masks from a face-parsing network, for paste-back (STIT's masks come from one: rotemtzaban/STIT
``models/seg_model_2.py``, a BiSeNet).

Any TorchScript segmentation model works, described by a short spec (config ``render.face_parser``): its input
side, normalisation, which output of a model that returns several is the logits, and which classes are the
face. The defaults are those of the BiSeNet face parser STIT uses (face-parsing.PyTorch, CelebAMask-HQ labels:
1 skin, 2-3 brows, 4-5 eyes, 6 glasses, 7-9 ears and earrings, 10 nose, 11 mouth, 12-13 lips; 14 neck, 17 hair
and the rest are not face), exported with ``torch.jit.trace``. Nothing is downloaded: the file comes from
the configured path.

The parsed face is then treated like the landmark hull of :func:`sg3pipe.render.pasteback.face_mask`: dilated
and feathered by exact Euclidean distances (OpenCV's distance transform).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sg3pipe.render.pasteback import feather


@dataclass(frozen=True)
class FaceParserSpec:
    """How to run a face-parsing model (config ``render.face_parser``)."""

    path: str  # TorchScript file
    input_size: int = 512  # the model's square input side in pixels
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # RGB in [0, 1] minus mean, over std
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    output_index: int | None = 0  # which output is the logits when the model returns a tuple (None: one tensor)
    face_classes: tuple[int, ...] = field(default=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13))


class FaceParserFileError(FileNotFoundError):
    """The configured face-parsing model is missing or is not a TorchScript file."""


class FaceParser:
    """A face-parsing model: uint8 faces in, the face region out."""

    def __init__(self, spec: FaceParserSpec, device: str | torch.device = "cpu"):
        path = Path(spec.path)
        if not path.is_file():
            raise FaceParserFileError(
                f"render.face_parser.path: {path} does not exist; point it at a TorchScript face parser (for "
                "example BiSeNet exported with torch.jit.trace) or set render.face_parser to null for landmark masks"
            )
        try:
            self.model = torch.jit.load(str(path), map_location=device).eval()
        except RuntimeError as error:
            raise FaceParserFileError(f"render.face_parser.path: {path} is not a TorchScript file ({error})") from None
        self.spec = spec
        self.device = torch.device(device)
        self.mean = torch.tensor(spec.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.std, device=self.device).view(1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """The face pixels of ``images [B, R, R, 3]`` uint8 RGB: ``[B, R, R]`` bool (the arg-max class is one of
        ``face_classes``; logits are resampled to ``R`` bilinearly before the arg-max)."""
        if len(images) == 0:
            return np.zeros(images.shape[:3], dtype=bool)
        size = images.shape[1]
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float() / 255
        x = F.interpolate(x, size=(self.spec.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        out = self.model((x - self.mean) / self.std)
        logits = out if self.spec.output_index is None else out[self.spec.output_index]
        logits = F.interpolate(logits.float(), size=(size, size), mode="bilinear", align_corners=False)
        classes = torch.tensor(self.spec.face_classes, device=logits.device)
        return torch.isin(logits.argmax(dim=1), classes).cpu().numpy()


def load_face_parser(config: dict | None, device: str | torch.device = "cpu") -> FaceParser | None:
    """The parser of config ``render.face_parser`` (:class:`FaceParserSpec` fields), or None when unset."""
    if not config:
        return None
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return FaceParser(FaceParserSpec(**values), device)


def region_mask(face: np.ndarray, dilate_px: float, feather_px: float) -> np.ndarray:
    """A soft mask ``[B, R, R]`` float32 from face regions ``face [B, R, R]`` bool: 1 within ``dilate_px`` of the
    region, falling to 0 over the next ``feather_px`` (:func:`sg3pipe.render.pasteback.feather`); all zero for a
    frame with no face pixel."""
    masks = np.zeros(face.shape, dtype=np.float32)
    for i, region in enumerate(face):
        if region.any():
            distance = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            masks[i] = feather(torch.from_numpy(distance), dilate_px, feather_px).numpy()
    return masks
