"""The per-frame similarity between a frame's aligned crop and its unaligned crop, from the two quads.

Both crops are square images of the same size cut from the same frame: the aligned crop from the frame's FFHQ
quad ``A`` (rotated, follows the face), the unaligned crop from the video's crop window ``C`` (fixed for the
whole video). Each quad maps its crop's unit coordinates ``u`` (sg3pipe.transforms: origin at the image
centre, one unit = the image width, y down) to frame pixels (sg3pipe.faces.alignment):

    Q(u) = centre + 2 * u_x * x + 2 * u_y * y.

The transform of a frame is

    M = Q_C^-1 o Q_A,

which maps aligned-crop unit coordinates to unit coordinates of the unaligned crop: the point ``u`` of the
aligned crop shows the same spot of the frame as the point ``M u`` of the unaligned crop. In the words of
:func:`sg3pipe.transforms.make_transform` it is the *content-moving* similarity that carries the aligned
image's content to where it lies in the unaligned crop, so

    G.synthesis(ws, transform=inverse(M))

renders the latent ``ws`` of the aligned crop as it appears in the unaligned crop (rotation, position and,
with ``use_scale``, size). Its parameters are the rotation ``angle_deg`` (counter-clockwise on screen), the
translation ``(tx, ty)`` (where the aligned crop's centre lands, in unaligned-crop widths) and ``scale`` (the
aligned quad's side over the crop window's side). The paper renders without the scale term (``use_scale``
false): the stored matrix is then ``make_transform(angle_deg, tx, ty)``, while ``scale`` is still recorded.
"""

from __future__ import annotations

import numpy as np

from sg3pipe.faces.alignment import quad_axes
from sg3pipe.transforms import make_transform, transform_params


def quad_matrix(quad: np.ndarray) -> np.ndarray:
    """The map ``Q`` from a quad's crop unit coordinates to frame pixels as ``[..., 3, 3]`` matrices.

    Args:
        quad: ``[..., 4, 2]`` corners in frame pixels (top-left, bottom-left, bottom-right, top-right).
    """
    centre, x, y = quad_axes(quad)
    m = np.zeros(centre.shape[:-1] + (3, 3))
    m[..., :2, 0] = 2.0 * x
    m[..., :2, 1] = 2.0 * y
    m[..., :2, 2] = centre
    m[..., 2, 2] = 1.0
    return m


def aligned_to_crop(aligned_quads: np.ndarray, crop_quad: np.ndarray) -> np.ndarray:
    """``M = Q_C^-1 o Q_A`` for every frame (module docstring), scale included.

    Args:
        aligned_quads: ``[N, 4, 2]`` FFHQ quads in frame pixels.
        crop_quad: ``[4, 2]`` the video's crop window in frame pixels.

    Returns:
        ``[N, 3, 3]`` float64 content-moving similarities in unit coordinates.
    """
    return np.linalg.inv(quad_matrix(crop_quad)) @ quad_matrix(aligned_quads)


def crop_transforms(aligned_quads: np.ndarray, crop_quad: np.ndarray, use_scale: bool = False) -> dict:
    """Per-frame transform parameters and the matrix to store.

    Args:
        aligned_quads: ``[N, 4, 2]`` FFHQ quads in frame pixels (NaN rows give NaN results).
        crop_quad: ``[4, 2]`` the video's crop window in frame pixels.
        use_scale: whether ``transform`` includes the scale (False: rotation and translation, as the paper).

    Returns:
        ``{"angle_deg", "tx", "ty", "scale"}`` each ``[N]`` float64 and ``"transform"`` ``[N, 3, 3]``, the
        content-moving ``M`` (pass ``inverse(M)`` to ``G.synthesis``).
    """
    angle_deg, tx, ty, scale = transform_params(aligned_to_crop(aligned_quads, crop_quad))
    matrix = make_transform(angle_deg, tx, ty, scale if use_scale else 1.0)
    return {"angle_deg": angle_deg, "tx": tx, "ty": ty, "scale": scale, "transform": matrix}


def unit_to_pixel_matrix(m: np.ndarray, width: int) -> np.ndarray:
    """A content-moving matrix ``[..., 3, 3]`` in unit coordinates as the same map in pixel coordinates of a
    ``width``-wide square image (pixel centres at integers), e.g. to move an image with ``cv2.warpAffine``."""
    to_unit = np.array([[1.0 / width, 0, 0.5 / width - 0.5], [0, 1.0 / width, 0.5 / width - 0.5], [0, 0, 1]])
    return np.linalg.inv(to_unit) @ m @ to_unit
