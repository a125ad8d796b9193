"""Procedural face renderer: the ground truth of the synthetic face world.

A face is a parameter vector (layout in :mod:`sg3pipe.synth.params`). Every feature (head, hair, eyes,
brows, nose, mouth, glasses...) is a signed distance function in *canonical* coordinates: the identity-pose,
FFHQ-aligned face, in the unit coordinates of :mod:`sg3pipe.transforms` (origin at the image centre,
1 = image width, y down). Each output pixel centre is mapped back through the inverse of the content-moving
similarity ``transform @ make_transform(pose)`` and every feature's coverage is computed there from its
signed distance and the pixel's footprint (analytic anti-aliasing). Nothing is ever resampled, so a render
under any similarity is exact at any resolution, and the 68 landmarks are the same transform applied to
points on the drawn outlines.

Canonical geometry: FFHQ alignment of the landmarks of an identity-pose face gives back the image square
(eye-to-eye = 0.25, horizontal, ``eye_avg + 0.1 * eye_to_mouth`` at the centre); identity parameters and
expressions move the eye centres not at all and the mouth corners by at most ``SMILE_LIFT / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sg3pipe.synth.params import (
    NUM_PARAMS,
    PARAM_NAMES,
    POSE_SLICE,
    column,
    params_from_normal,
    sample_params,
)
from sg3pipe.transforms import make_transform, unit_to_pixel

__all__ = [
    "PARAM_NAMES",
    "RenderOutput",
    "render",
    "attribute_labels",
    "pose_matrices",
    "sample_params",
    "params_from_normal",
    "canonical_landmarks",
    "pixel_landmarks",
]

AA_PIXELS = 1.5  # width of the anti-aliasing ramp across an edge, in output pixels (1 = box filter)
CHUNK_PIXELS = 1 << 18  # faces x pixels evaluated at once: bounds memory and keeps temporaries in cache

# Canonical geometry, in image widths of the aligned face.
EYE_X = 0.125  # FFHQ alignment makes the crop 4x the eye-to-eye distance
EYE_TO_MOUTH = 0.23  # eye centre line to mouth corners; 1.8x this stays below 2x eye-to-eye
EYE_Y = -0.1 * EYE_TO_MOUTH  # so that eye_avg + 0.1 * eye_to_mouth is the image centre
MOUTH_Y = 0.9 * EYE_TO_MOUTH
SMILE_LIFT = 0.022  # a full smile raises the mouth corners this much; half a smile puts them at MOUTH_Y
FACE_Y0 = -0.01  # the widest line of the face
CRANIUM = 0.37  # face centre line to the top of the skull
HAIRLINE_CURVE = 2.2  # the hairline rises as HAIRLINE_CURVE * x^2 towards the temples

# Landmark sample positions along features, as fractions of the feature's half-width.
EYE_LID_X = 1.0 / 3.0  # landmarks 37, 38, 40, 41 (and 43, 44, 46, 47)
BROW_X = (-0.9, -0.45, 0.0, 0.45, 0.9)  # inner to outer end of a brow
JAW_ANGLE0 = -0.06  # angle (radians, positive = down) on the face outline of jaw landmarks 0 and 16: eye level

# Colour palettes (RGB in [0, 1]), interpolated piecewise-linearly by a parameter in [0, 1].
SKIN = ((0.98, 0.86, 0.76), (0.93, 0.76, 0.64), (0.80, 0.59, 0.45), (0.60, 0.42, 0.30), (0.38, 0.25, 0.18))
HAIR = ((0.05, 0.045, 0.04), (0.20, 0.13, 0.09), (0.38, 0.25, 0.15), (0.58, 0.42, 0.26), (0.86, 0.73, 0.50))
IRIS = ((0.30, 0.17, 0.08), (0.45, 0.36, 0.16), (0.30, 0.50, 0.30), (0.30, 0.50, 0.78), (0.52, 0.58, 0.64))
FRAMES = ((0.05, 0.05, 0.06), (0.35, 0.20, 0.10), (0.75, 0.60, 0.25), (0.70, 0.12, 0.12))
HUES = (
    (0.8, 0.2, 0.2),
    (0.8, 0.7, 0.2),
    (0.2, 0.7, 0.3),
    (0.2, 0.6, 0.7),
    (0.2, 0.3, 0.8),
    (0.7, 0.2, 0.7),
    (0.8, 0.2, 0.2),
)
SCLERA = (0.95, 0.93, 0.90)
LASH = (0.10, 0.07, 0.06)
MOUTH_INSIDE = (0.30, 0.07, 0.08)
TEETH = (0.94, 0.92, 0.86)
BLUSH = (0.85, 0.35, 0.35)

# Binary attribute labels: name -> (parameter, threshold, True when the parameter is above it).
LABELS: dict[str, tuple[str, float, bool]] = {
    "smiling": ("smile", 0.5, True),
    "glasses": ("glasses", 0.5, True),
    "eyes_closed": ("eye_openness", 0.3, False),
    "dark_hair": ("hair_lightness", 0.4, False),
    "mouth_open": ("mouth_open", 0.5, True),
    "long_hair": ("hair_length", 0.5, True),
}


@dataclass
class RenderOutput:
    """What :func:`render` returns."""

    images: torch.Tensor  # [N, 3, H, W] float32 RGB in [-1, 1]
    landmarks: torch.Tensor  # [N, 68, 2] float32 (x, y) pixel coordinates (pixel centre (c, r) at (c, r))
    labels: dict[str, torch.Tensor]  # name -> [N] bool, see LABELS


# ---------------------------------------------------------------------------------------------------------
# Geometry of each feature from the parameters. Fields are [N, 1] tensors so they broadcast over pixels.
# Symmetric features are described for the right half of the image (x > 0); the left half is the mirror.


def _p(params: torch.Tensor, name: str) -> torch.Tensor:
    return column(params, name)[:, None]


@dataclass
class _Head:
    half_width: torch.Tensor  # face half-width at FACE_Y0
    length: torch.Tensor  # FACE_Y0 to chin
    jaw_exponent: torch.Tensor  # superellipse exponent of the lower face


def _head(params: torch.Tensor) -> _Head:
    return _Head(_p(params, "face_width"), _p(params, "face_length"), _p(params, "jaw_shape"))


@dataclass
class _Eye:
    half_width: torch.Tensor  # corner to eye centre
    upper: torch.Tensor  # upper lid apex above the corner line (a sliver when closed)
    lower: torch.Tensor  # lower lid apex below the corner line
    line_y: torch.Tensor  # y of the corner line, chosen so the six eye landmarks average to EYE_Y
    iris: torch.Tensor  # iris radius
    crease: torch.Tensor  # lid crease apex above the corner line (does not blink)


def _lid_y(x: torch.Tensor, half_width: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    """y offset of a circular arc through (+-half_width, 0) with apex ``height`` (sign gives the side)."""
    # The arc's circle: centre (0, -k), radius r, k = (w^2 - h^2) / 2h. Written to avoid cancellation as h -> 0.
    h = height.abs()
    k = (half_width**2 - h**2) / (2 * h)
    r = k + h
    return torch.sign(height) * (h**2 + 2 * k * h - x**2) / (k + torch.sqrt((r**2 - x**2).clamp_min(0)))


def _eye(params: torch.Tensor) -> _Eye:
    size = 0.92 + 0.16 * _p(params, "eye_size")
    aperture = ((_p(params, "eye_openness") - 0.1) / 0.8).clamp(0, 1)
    half_width = 0.052 * size
    # Closed lids keep a sliver of height so the arcs keep their orientation (the opening is then invisible).
    upper = 0.030 * size * aperture.clamp_min(1e-4)
    lower = 0.017 * size * aperture.clamp_min(1e-4)
    x = EYE_LID_X * half_width
    mean = (2 * _lid_y(x, half_width, -upper) + 2 * _lid_y(x, half_width, lower)) / 6
    return _Eye(half_width, upper, lower, EYE_Y - mean, 0.021 * size, 0.030 * size + 0.012)


@dataclass
class _Brow:
    x: torch.Tensor  # centre
    y: torch.Tensor  # y of the line through both ends
    half_width: torch.Tensor
    arch: torch.Tensor  # apex height above the end line
    thickness: torch.Tensor  # half-thickness at the inner end (the outer end is half of it)


def _brow(params: torch.Tensor) -> _Brow:
    y = EYE_Y - 0.052 - 0.02 * _p(params, "brow_height") - 0.022 * _p(params, "brow_raise")
    arch = 0.008 + 0.022 * _p(params, "brow_arch")
    thickness = 0.006 + 0.006 * _p(params, "brow_thickness")
    return _Brow(torch.full_like(y, EYE_X + 0.005), y, torch.full_like(y, 0.075), arch, thickness)


@dataclass
class _Nose:
    tip_y: torch.Tensor
    base_y: torch.Tensor  # subnasale (landmark 33)
    half_width: torch.Tensor  # landmarks 31 and 35
    base_rise: torch.Tensor  # how much higher the wings' base (31, 35) is than the subnasale


def _nose(params: torch.Tensor) -> _Nose:
    tip_y = 0.095 + 0.02 * _p(params, "nose_length")
    half_width = 0.030 + 0.016 * _p(params, "nose_width")
    return _Nose(tip_y, tip_y + 0.025, half_width, torch.full_like(tip_y, 0.012))


@dataclass
class _Mouth:
    half_width: torch.Tensor  # corner x
    corner_y: torch.Tensor
    lift: torch.Tensor  # how much higher the corners are than the centre of the lip line
    gap_up: torch.Tensor  # opening above the lip line at the centre
    gap_low: torch.Tensor  # opening below it
    upper_lip: torch.Tensor  # upper lip thickness at the centre
    lower_lip: torch.Tensor
    smile: torch.Tensor


def _mouth(params: torch.Tensor) -> _Mouth:
    smile = _p(params, "smile")
    gap = 0.05 * _p(params, "mouth_open")
    fullness = _p(params, "lip_fullness")
    half_width = (0.088 + 0.016 * _p(params, "mouth_width")) * (1 + 0.1 * smile)
    return _Mouth(
        half_width,
        MOUTH_Y + SMILE_LIFT * (0.5 - smile),
        0.008 + 0.03 * smile,
        0.35 * gap,
        0.65 * gap,
        (0.013 + 0.01 * fullness) * (1 - 0.3 * smile),
        0.018 + 0.012 * fullness,
        smile,
    )


def _curve(u: torch.Tensor, c0: torch.Tensor, c2: torch.Tensor, c4: torch.Tensor) -> torch.Tensor:
    """The polynomial ``c0 + c2 u^2 + c4 u^4`` of ``u = x / half_width``."""
    u2 = u * u
    return c0 + u2 * (c2 + c4 * u2)


def _lip_curves(m: _Mouth) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Coefficients ``(c0, c2, c4)`` in ``u = x / half_width`` of the lip outlines, all through the corners."""
    zero = torch.zeros_like(m.lift)
    centre = m.corner_y + m.lift
    return {
        "line": (centre, -m.lift, zero),  # where the lips meet when closed
        "inner_upper": (centre - m.gap_up, m.gap_up - m.lift, zero),
        "inner_lower": (centre + m.gap_low, -m.gap_low - m.lift, zero),
        "outer_upper": (centre - m.gap_up - m.upper_lip, m.gap_up - m.lift, m.upper_lip),
        "outer_lower": (centre + m.gap_low + m.lower_lip, -m.gap_low - m.lift - m.lower_lip, zero),
    }


# ---------------------------------------------------------------------------------------------------------
# Landmarks (iBUG 68-point order) on the drawn outlines, in canonical coordinates.


def _jaw_points(h: _Head) -> torch.Tensor:
    angle = torch.linspace(np.pi - JAW_ANGLE0, JAW_ANGLE0, 17, dtype=h.length.dtype, device=h.length.device)
    c, s = torch.cos(angle), torch.sin(angle)
    upper = s < 0  # above the centre line the outline is the ellipse of the cranium
    power = 2 / torch.where(upper, 2.0, h.jaw_exponent)
    x = h.half_width * torch.sign(c) * c.abs() ** power
    y = FACE_Y0 + torch.where(upper, CRANIUM, h.length) * torch.sign(s) * s.abs() ** power
    return torch.stack([x, y], dim=-1)


def _brow_points(b: _Brow) -> torch.Tensor:
    u = torch.tensor(BROW_X, dtype=b.y.dtype, device=b.y.device) * b.half_width
    right = torch.stack([b.x + u, b.y + _lid_y(u, b.half_width, -b.arch)], dim=-1)  # 22..26
    return torch.cat([right.flip(1) * right.new_tensor([-1.0, 1.0]), right], dim=1)


def _nose_points(n: _Nose) -> torch.Tensor:
    bridge_y = EYE_Y + (n.tip_y - EYE_Y) * torch.linspace(0, 1, 4, dtype=n.tip_y.dtype, device=n.tip_y.device)
    bridge = torch.stack([torch.zeros_like(bridge_y), bridge_y], dim=-1)
    u = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=n.tip_y.dtype, device=n.tip_y.device) * n.half_width
    base = torch.stack([u, n.base_y - n.base_rise + _lid_y(u, n.half_width, n.base_rise)], dim=-1)
    return torch.cat([bridge, base], dim=1)


def _eye_points(e: _Eye) -> torch.Tensor:
    u = (
        torch.tensor(
            [-1.0, -EYE_LID_X, EYE_LID_X, 1.0, EYE_LID_X, -EYE_LID_X], dtype=e.upper.dtype, device=e.upper.device
        )
        * e.half_width
    )
    heights = torch.cat([-e.upper, -e.upper, -e.upper, -e.upper, e.lower, e.lower], dim=1)  # corners: y = 0
    # Right eye 42..47: inner corner, upper lid, outer corner, lower lid. The left eye 36..41 is its mirror
    # image, renumbered to start at its outer corner.
    right = torch.stack([EYE_X + u, e.line_y + _lid_y(u, e.half_width, heights)], dim=-1)
    left = (right * right.new_tensor([-1.0, 1.0]))[:, [3, 2, 1, 0, 5, 4]]
    return torch.cat([left, right], dim=1)


def _mouth_points(m: _Mouth) -> torch.Tensor:
    curves = _lip_curves(m)

    def on(name: str, us: tuple[float, ...]) -> torch.Tensor:
        u = torch.tensor(us, dtype=m.lift.dtype, device=m.lift.device).expand(len(m.lift), -1)
        return torch.stack([u * m.half_width, _curve(u, *curves[name])], dim=-1)

    outer_upper = on("outer_upper", (-1.0, -0.6, -0.28, 0.0, 0.28, 0.6, 1.0))  # 48..54
    outer_lower = on("outer_lower", (0.6, 0.3, 0.0, -0.3, -0.6))  # 55..59
    corners = (on("inner_upper", (-0.9, 0.9)) + on("inner_lower", (-0.9, 0.9))) / 2
    inner_upper = on("inner_upper", (-0.4, 0.0, 0.4))  # 61..63
    inner_lower = on("inner_lower", (0.4, 0.0, -0.4))  # 65..67
    return torch.cat([outer_upper, outer_lower, corners[:, :1], inner_upper, corners[:, 1:], inner_lower], dim=1)


def canonical_landmarks(params: torch.Tensor) -> torch.Tensor:
    """The 68 iBUG landmarks of faces at the identity pose, in canonical unit coordinates.

    Args:
        params: ``[N, NUM_PARAMS]`` face parameters (the pose columns are ignored).

    Returns:
        ``[N, 68, 2]`` float32 ``(x, y)`` in image widths, origin at the image centre.
    """
    params = _check_params(params)
    parts = [
        _jaw_points(_head(params)),
        _brow_points(_brow(params)),
        _nose_points(_nose(params)),
        _eye_points(_eye(params)),
        _mouth_points(_mouth(params)),
    ]
    return torch.cat(parts, dim=1)


# ---------------------------------------------------------------------------------------------------------
# Signed distances (negative inside) and coverage. Coverage is the signed distance through a linear ramp
# AA_PIXELS output pixels wide, measured in canonical units (so it follows the transform's scale): the
# analytic box-filter coverage of a straight edge, slightly widened.


_HALF = torch.tensor(0.5)


def _cover(d: torch.Tensor, inv_width: torch.Tensor) -> torch.Tensor:
    """Fraction of each pixel inside the shape ``d < 0``; ``inv_width`` is 1 / ramp width (canonical units)."""
    return torch.addcmul(_HALF, d, inv_width, value=-1).clamp_(0, 1)


def _both(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Coverage of the intersection of two shapes with coverages ``a`` and ``b``.

    ``a + b - 1`` is exact for a slab between two parallel edges, so shapes that close to nothing (a blinking
    eye, a closing mouth) fade out instead of staying half-covered along their centre line.
    """
    return (a + b - 1).clamp_(min=0)


def _stroke(d: torch.Tensor, half_thickness, inv_width: torch.Tensor) -> torch.Tensor:
    """Coverage of a line of ``half_thickness`` along the zero set of ``d``; thin lines fade, not alias."""
    return _cover(d - half_thickness, inv_width) - _cover(d + half_thickness, inv_width)


def _ellipse(x: torch.Tensor, y: torch.Tensor, a, b) -> torch.Tensor:
    """Approximate signed distance to the ellipse ``(x/a)^2 + (y/b)^2 = 1`` (exact on the boundary)."""
    k0 = torch.hypot(x / a, y / b)
    k1 = torch.hypot(x / (a * a), y / (b * b)).clamp_(min=1e-9)
    return k0 * (k0 - 1) / k1


def _superellipse(x: torch.Tensor, y: torch.Tensor, a, b, n) -> torch.Tensor:
    """First-order signed distance ``(g - 1) / |grad g|`` to ``g = (|x/a|^n + |y/b|^n)^(1/n) = 1``."""
    ax, ay = x.abs() / a, y.abs() / b
    px, py = ax ** (n - 1), ay ** (n - 1)
    g = ((ax * px + ay * py) ** (1 / n)).clamp_(min=1e-6)
    grad = g ** (1 - n) * torch.hypot(px / a, py / b)
    return (g - 1) / grad.clamp_(min=1e-9)


def _circle(x: torch.Tensor, y: torch.Tensor, radius) -> torch.Tensor:
    return torch.hypot(x, y) - radius


def _segment(x: torch.Tensor, y: torch.Tensor, ax, ay, bx, by) -> torch.Tensor:
    """Unsigned distance to the segment from ``(ax, ay)`` to ``(bx, by)``."""
    px, py, dx, dy = x - ax, y - ay, bx - ax, by - ay
    t = ((px * dx + py * dy) / (dx * dx + dy * dy)).clamp_(0, 1)
    return torch.hypot(px - t * dx, py - t * dy)


def _rounded_box(x: torch.Tensor, y: torch.Tensor, hx, hy, r) -> torch.Tensor:
    """Signed distance to a box of half-sizes ``(hx, hy)`` with corner radius ``r``, centred at the origin."""
    qx, qy = x.abs() - hx + r, y.abs() - hy + r
    return torch.hypot(qx.clamp(min=0), qy.clamp(min=0)) + torch.maximum(qx, qy).clamp_(max=0) - r


def _arc(u: torch.Tensor, v: torch.Tensor, half_width: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    """Signed distance to the circular arc of :func:`_lid_y` (through ``(+-half_width, 0)``, apex ``(0, height)``,
    ``height != 0``).

    Negative on the chord's side of the arc. Only the half of the circle on the apex side counts; the far
    half is reported as far outside, so strokes along the arc do not reappear on the circle's other side.
    """
    side = torch.sign(height)
    h = height.abs()
    k = (half_width**2 - h**2) / (2 * h)
    along = side * v  # towards the apex
    # |p - c|^2 - r^2 for centre c = (0, -side * k) and r = k + h, expanded so it stays exact as h -> 0.
    power = u * u + v * v + 2 * k * (along - h) - h * h
    d = power / (torch.hypot(u, along + k) + k + h)
    return d.masked_fill_(along <= -k, 1.0)


def _below(x: torch.Tensor, y: torch.Tensor, half_width: torch.Tensor, coeffs) -> torch.Tensor:
    """First-order signed distance to a lip curve ``y = f(x)`` of :func:`_lip_curves`, positive below it."""
    c0, c2, c4 = coeffs
    u = x / half_width
    slope = u * (2 * c2 + 4 * c4 * u * u) / half_width
    return (y - _curve(u, c0, c2, c4)) * torch.rsqrt(1 + slope * slope)


def _palette(t: torch.Tensor, colours: tuple[tuple[float, float, float], ...]) -> torch.Tensor:
    """Piecewise-linear colour ramp: ``t`` ``[N, 1]`` in [0, 1] -> ``[N, 3, 1]`` RGB."""
    table = torch.tensor(colours, dtype=t.dtype, device=t.device)
    pos = t[:, 0].clamp(0, 1) * (len(colours) - 1)
    i = pos.floor().clamp(max=len(colours) - 2).long()
    return torch.lerp(table[i], table[i + 1], (pos - i)[:, None])[:, :, None]


def _rgb(colour: tuple[float, float, float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(colour, dtype=like.dtype, device=like.device)[None, :, None]


# ---------------------------------------------------------------------------------------------------------
# Drawing, back to front. Large layers are evaluated at every pixel; the small features only on the pixels
# of a canonical region around them (see _REGIONS), gathered into a one-pixel-per-row sub-canvas.


@dataclass
class _Canvas:
    """Pixel centres in canonical coordinates and the image being painted, for n faces of HW pixels."""

    x: torch.Tensor  # [n, HW]
    y: torch.Tensor  # [n, HW]
    aa: torch.Tensor  # [n, 1] anti-aliasing ramp width in canonical units
    rgb: torch.Tensor  # [n, 3, HW] in [0, 1]

    def __post_init__(self):
        self.xm = self.x.abs()  # mirrored x: symmetric features are drawn once for both sides
        self.inv_aa = 1 / self.aa

    def cover(self, d: torch.Tensor) -> torch.Tensor:
        return _cover(d, self.inv_aa)

    def stroke(self, d: torch.Tensor, half_thickness, min_width: float = 0.0) -> torch.Tensor:
        return _stroke(d, half_thickness, self.inv_aa if min_width == 0 else 1 / self.aa.clamp(min=min_width))

    def soft(self, d: torch.Tensor, width: float) -> torch.Tensor:
        """Coverage with a wide ramp (``width`` canonical units), for shading rather than outlines."""
        return _cover(d, 1 / self.aa.clamp(min=width))

    def paint(self, colour: torch.Tensor, alpha: torch.Tensor) -> None:
        """Composite ``colour`` (``[n, 3, 1]`` or ``[n, 3, HW]``) over the image with ``alpha`` ``[n, HW]``."""
        self.rgb.lerp_(colour, alpha[:, None])

    def region(self, centre_x: float, half_x: float, centre_y: float, half_y: float, faces=None):
        """The pixels within a canonical box (in mirrored x, grown by the ramp width) of faces ``faces`` ([n, 1]
        bool or None), as a sub-canvas of one pixel per row, and the flat indices to put it back with."""
        keep = ((self.xm - centre_x).abs() < half_x + self.aa) & ((self.y - centre_y).abs() < half_y + self.aa)
        if faces is not None:
            keep &= faces
        face, pixel = keep.nonzero(as_tuple=True)
        sub = _Canvas(
            self.x[face, pixel, None], self.y[face, pixel, None], self.aa[face], self.rgb[face, :, pixel, None]
        )
        return sub, (face, pixel)

    def put(self, sub: _Canvas, where: tuple[torch.Tensor, torch.Tensor]) -> None:
        face, pixel = where
        self.rgb[face, :, pixel] = sub.rgb[:, :, 0]


# Canonical boxes (centre x and half-width in mirrored x, centre y and half-height) holding everything the
# small features paint for any parameters: eyes and brows, nose + cheeks + mouth, glasses.
_REGIONS = {
    "eyes": (EYE_X, 0.105, EYE_Y - 0.04, 0.11),
    "lower": (0.105, 0.105, 0.165, 0.165),
    "glasses": (0.16, 0.16, EYE_Y, 0.07),
}


def _shade(factor: torch.Tensor) -> torch.Tensor:
    """A per-pixel brightness factor ``[n, HW]`` as a colour multiplier ``[n, 1, HW]``."""
    return factor[:, None]


def _skin(params: torch.Tensor) -> torch.Tensor:
    warmth = _p(params, "skin_warmth")[:, :, None] - 0.5
    return (_palette(_p(params, "skin_tone"), SKIN) + warmth * _rgb((-0.02, 0.03, -0.04), params)).clamp(0, 1)


def _hair_colour(params: torch.Tensor) -> torch.Tensor:
    warmth = _p(params, "hair_warmth")[:, :, None] - 0.5
    return (_palette(_p(params, "hair_lightness"), HAIR) + warmth * _rgb((0.10, 0.0, -0.06), params)).clamp(0, 1)


def _hair_shape(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Half-width and top height (above FACE_Y0) of the hair mass."""
    volume = _p(params, "hair_volume")
    return _p(params, "face_width") + 0.025 + 0.05 * volume, CRANIUM + 0.03 + 0.06 * volume


def _hair_shade(c: _Canvas, d: torch.Tensor) -> torch.Tensor:
    """Hair darkens towards its outline (``d`` its signed distance)."""
    return _shade(0.7 + 0.3 * c.soft(d + 0.03, 0.06))


def _draw_background(c: _Canvas, params: torch.Tensor) -> None:
    colour = 0.12 + 0.76 * params[:, [PARAM_NAMES.index(n) for n in ("bg_red", "bg_green", "bg_blue")], None]
    torch.mul(colour, _shade(1 - 0.15 * c.y.clamp(-0.75, 0.75)), out=c.rgb)  # lit from above


def _draw_back_hair(c: _Canvas, params: torch.Tensor, hair: torch.Tensor) -> None:
    half_width, top = _hair_shape(params)
    dy = c.y - FACE_Y0
    # Long hair: the ellipse is stretched downwards by the hair length, so its sides fall straight down.
    dy = dy - torch.minimum(dy.clamp(min=0), 0.5 * _p(params, "hair_length"))
    d = _ellipse(c.x, dy, half_width, torch.where(dy < 0, top, 0.1))
    c.paint(hair * _hair_shade(c, d), c.cover(d))


def _draw_body(c: _Canvas, params: torch.Tensor, skin: torch.Tensor, head: _Head) -> None:
    chin = FACE_Y0 + head.length
    neck = _rounded_box(c.x, c.y - 0.36, 0.5 * head.half_width + 0.02, 0.3, 0.05)
    c.paint(skin * _shade(0.55 + 0.3 * ((c.y - chin) / 0.12).clamp(0, 1)), c.cover(neck))  # chin's shadow
    cloth = _palette(_p(params, "cloth_hue"), HUES) * (0.25 + 0.7 * _p(params, "cloth_lightness"))[:, :, None]
    torso = (c.y - 0.78).clamp(max=0)  # round shoulders, then the torso falls straight down out of view
    body = _ellipse(c.x, torso, 0.6, 0.32)
    neckline = _circle(c.x, c.y - 0.4, 0.12)
    c.paint(cloth * _shade(0.8 + 0.2 * c.soft(body + 0.04, 0.08)), _both(c.cover(body), c.cover(-neckline)))


def _draw_face(c: _Canvas, skin: torch.Tensor, head: _Head) -> None:
    ear_x, ear_y = c.xm - (head.half_width - 0.008), c.y - 0.04
    c.paint(skin * 0.9, c.cover(_ellipse(ear_x, ear_y, 0.03, 0.06)))
    c.paint(skin * 0.7, 0.5 * c.soft(_ellipse(ear_x - 0.006, ear_y, 0.015, 0.04), 0.02))
    dy = c.y - FACE_Y0
    upper = dy < 0
    d = _superellipse(
        c.x, dy, head.half_width, torch.where(upper, CRANIUM, head.length), torch.where(upper, 2.0, head.jaw_exponent)
    )
    c.paint(skin * _shade(0.85 + 0.15 * c.soft(d + 0.035, 0.07)), c.cover(d))  # darker towards the edge


def _draw_cheeks(c: _Canvas, skin: torch.Tensor, nose: _Nose, mouth: _Mouth) -> None:
    blush = _circle(c.xm - 0.14, c.y - 0.1 + 0.015 * mouth.smile, 0.02)
    c.paint(_rgb(BLUSH, skin), (0.08 + 0.12 * mouth.smile) * c.soft(blush, 0.08))
    fold = _segment(
        c.xm, c.y, nose.half_width + 0.012, nose.base_y - 0.015, mouth.half_width + 0.014, mouth.corner_y + 0.012
    )  # nasolabial fold, deepens with a smile
    c.paint(skin * 0.6, 0.3 * mouth.smile * c.soft(fold - 0.003, 0.012))


def _draw_eyes(c: _Canvas, params: torch.Tensor, skin: torch.Tensor, eye: _Eye) -> None:
    u, v = c.xm - EYE_X, c.y - eye.line_y
    c.paint(skin * 0.7, 0.12 * c.soft(_ellipse(u, v + 0.006, 0.08, 0.045), 0.04))  # socket
    inside_x = c.cover(u.abs() - eye.half_width)
    crease = _arc(u, v, eye.half_width + 0.006, -eye.crease)
    c.paint(skin * 0.6, 0.3 * inside_x * c.stroke(crease, 0.002, min_width=0.006))
    upper, lower = _arc(u, v, eye.half_width, -eye.upper), _arc(u, v, eye.half_width, eye.lower)
    opening = _both(c.cover(upper), c.cover(lower))
    c.paint(_rgb(SCLERA, skin), opening)
    iris = _circle(u, c.y - EYE_Y - 0.002, eye.iris)
    c.paint(_palette(_p(params, "eye_colour"), IRIS), opening * c.cover(iris))
    c.paint(_rgb(LASH, skin), opening * c.cover(iris + 0.58 * eye.iris))  # pupil
    c.paint(_rgb(LASH, skin), 0.95 * inside_x * c.stroke(upper, 0.0032))
    c.paint(_rgb(LASH, skin), 0.45 * inside_x * c.stroke(lower, 0.0018))


def _draw_brows(c: _Canvas, hair: torch.Tensor, brow: _Brow) -> None:
    u = c.xm - brow.x
    taper = 1 - 0.25 * (u / brow.half_width + 1).clamp(0, 2)  # inner end full, outer end half thickness
    d = _arc(u, c.y - brow.y, brow.half_width, -brow.arch)
    c.paint(hair * 0.55 + 0.04, 0.9 * c.cover(u.abs() - brow.half_width) * c.stroke(d, brow.thickness * taper))


def _draw_nose(c: _Canvas, skin: torch.Tensor, nose: _Nose) -> None:
    side = _segment(c.xm, c.y, 0.026, EYE_Y + 0.02, 0.75 * nose.half_width + 0.008, nose.base_y - 0.03)
    c.paint(skin * 0.7, 0.16 * c.soft(side - 0.004, 0.02))
    c.paint(torch.ones_like(skin), 0.12 * c.soft(_ellipse(c.x, c.y - nose.tip_y + 0.006, 0.016, 0.012), 0.015))
    chord_y = nose.base_y - nose.base_rise
    wing = _circle(c.xm - nose.half_width + 0.012, c.y - chord_y + 0.006, 0.014)
    outer = c.cover(nose.half_width - 0.012 - c.xm)
    c.paint(skin * 0.6, 0.3 * outer * c.stroke(wing, 0.002, min_width=0.004))
    nostril = _ellipse(
        c.xm - 0.5 * nose.half_width, c.y - chord_y - 0.25 * nose.base_rise + 0.007, 0.3 * nose.half_width, 0.0055
    )
    c.paint(skin * 0.35, 0.7 * c.cover(nostril))
    base = _arc(c.x, c.y - chord_y, nose.half_width, nose.base_rise)
    c.paint(skin * 0.55, 0.45 * c.cover(c.xm - nose.half_width) * c.stroke(base, 0.003))


def _draw_mouth(c: _Canvas, params: torch.Tensor, skin: torch.Tensor, mouth: _Mouth) -> None:
    below = {name: _below(c.xm, c.y, mouth.half_width, coeffs) for name, coeffs in _lip_curves(mouth).items()}
    inside_x = c.cover(c.xm - mouth.half_width)
    redness = (0.3 + 0.4 * _p(params, "lip_redness"))[:, :, None]
    lips = torch.lerp(skin, _rgb((0.78, 0.28, 0.30), skin), redness)
    c.paint(lips, inside_x * _both(c.cover(-below["outer_upper"]), c.cover(below["outer_lower"])))
    c.paint(lips * 0.85, inside_x * _both(c.cover(-below["outer_upper"]), c.cover(below["line"])))
    c.paint(lips * 0.4, 0.6 * inside_x * c.stroke(below["line"], 0.0022))
    opening = inside_x * _both(c.cover(-below["inner_upper"]), c.cover(below["inner_lower"]))
    c.paint(_rgb(MOUTH_INSIDE, skin), opening)
    teeth = _both(opening, c.cover(below["inner_upper"] - 0.6 * (mouth.gap_up + mouth.gap_low)))
    c.paint(_rgb(TEETH, skin), (0.35 + 0.65 * mouth.smile) * teeth)


def _draw_front_hair(c: _Canvas, params: torch.Tensor, hair: torch.Tensor) -> None:
    half_width, top = _hair_shape(params)
    outline = _ellipse(c.x, c.y - FACE_Y0, half_width, top)
    apex_x = c.x - 0.08 * _p(params, "hair_part")
    apex_y = -0.17 - 0.13 * _p(params, "hairline")
    hairline = (c.y - apex_y - HAIRLINE_CURVE * apex_x**2) * torch.rsqrt(1 + (2 * HAIRLINE_CURVE * apex_x) ** 2)
    c.paint(hair * _hair_shade(c, outline), c.cover(torch.maximum(outline, hairline)))


def _draw_glasses(c: _Canvas, params: torch.Tensor, head: _Head) -> None:
    shape = _p(params, "glasses_shape")
    half_x, half_y = 0.074, 0.052 - 0.01 * shape
    rim = _rounded_box(c.xm - EYE_X, c.y - EYE_Y - 0.004, half_x, half_y, 0.05 - 0.035 * shape)
    opacity = _p(params, "glasses")
    c.paint(_rgb((0.85, 0.9, 1.0), rim), 0.12 * opacity * c.cover(rim))  # lens
    bridge = _segment(c.xm, c.y, 0.0, EYE_Y - 0.012, EYE_X - half_x + 0.004, EYE_Y - 0.006)
    arm = _segment(c.xm, c.y, EYE_X + half_x - 0.002, EYE_Y - 0.008, head.half_width + 0.02, EYE_Y)
    frame = torch.maximum(c.stroke(rim, 0.0045), c.stroke(torch.minimum(bridge, arm), 0.0035))
    c.paint(_palette(_p(params, "glasses_colour"), FRAMES), opacity * frame)


def _draw(params: torch.Tensor, x: torch.Tensor, y: torch.Tensor, aa: torch.Tensor) -> torch.Tensor:
    """Paint faces ``params`` ``[n, P]`` at canonical pixel centres ``x, y`` ``[n, HW]``; ``[n, 3, HW]`` in [0, 1]."""
    c = _Canvas(x, y, aa, x.new_empty(len(x), 3, x.shape[1]))
    skin, hair, head = _skin(params), _hair_colour(params), _head(params)
    _draw_background(c, params)
    _draw_back_hair(c, params, hair)
    _draw_body(c, params, skin, head)
    _draw_face(c, skin, head)

    sub, where = c.region(*_REGIONS["lower"])
    face = where[0]
    p, s = params[face], skin[face]
    _draw_cheeks(sub, s, _nose(p), _mouth(p))
    _draw_nose(sub, s, _nose(p))
    _draw_mouth(sub, p, s, _mouth(p))
    c.put(sub, where)

    sub, where = c.region(*_REGIONS["eyes"])
    face = where[0]
    p = params[face]
    _draw_eyes(sub, p, skin[face], _eye(p))
    _draw_brows(sub, hair[face], _brow(p))
    c.put(sub, where)

    _draw_front_hair(c, params, hair)
    sub, where = c.region(*_REGIONS["glasses"], faces=_p(params, "glasses") > 0)
    face = where[0]
    _draw_glasses(sub, params[face], _head(params[face]))
    c.put(sub, where)
    return c.rgb


# ---------------------------------------------------------------------------------------------------------
# The public entry points.


def _check_params(params: torch.Tensor) -> torch.Tensor:
    if params.ndim != 2 or params.shape[1] != NUM_PARAMS:
        raise ValueError(f"params must have shape [N, {NUM_PARAMS}] (see PARAM_NAMES), got {list(params.shape)}")
    return params.float()


def pose_matrices(params: torch.Tensor, transform=None) -> torch.Tensor:
    """The content-moving similarity of each face: ``transform @ make_transform(*pose)``.

    Args:
        params: ``[N, NUM_PARAMS]`` face parameters; the pose columns give ``(angle_deg, tx, ty, scale)``.
        transform: optional ``[3, 3]`` or ``[N, 3, 3]`` content-moving matrix (numpy or torch) applied
            after the pose, in the convention of :mod:`sg3pipe.transforms`.

    Returns:
        ``[N, 3, 3]`` float64 CPU tensor.
    """
    pose = _check_params(params)[:, POSE_SLICE].detach().cpu().double().numpy()
    matrices = make_transform(*pose.T)
    if transform is not None:
        matrices = torch.as_tensor(transform).detach().cpu().double().numpy() @ matrices
    return torch.from_numpy(np.ascontiguousarray(matrices))


def attribute_labels(params: torch.Tensor) -> dict[str, torch.Tensor]:
    """Binary attributes of faces ``[N, NUM_PARAMS]``: name -> ``[N]`` bool tensor (thresholds in LABELS)."""
    params = _check_params(params)
    labels = {}
    for name, (param, threshold, above) in LABELS.items():
        value = column(params, param)
        labels[name] = value > threshold if above else value < threshold
    return labels


def render(params: torch.Tensor, resolution: int, transform=None) -> RenderOutput:
    """Render faces, their 68 landmarks and their attribute labels.

    Args:
        params: ``[N, NUM_PARAMS]`` face parameters (layout ``PARAM_NAMES``), on any device.
        resolution: output size in pixels (square images).
        transform: optional ``[3, 3]`` or ``[N, 3, 3]`` content-moving similarity composed on top of each
            face's own pose (see :func:`pose_matrices`); ``render(p, T)`` equals rendering ``p`` with its
            pose replaced by ``transform_params(T @ make_transform(pose))``.

    Returns:
        :class:`RenderOutput` with images ``[N, 3, resolution, resolution]`` in [-1, 1], landmarks
        ``[N, 68, 2]`` in pixel coordinates and labels ``name -> [N]`` bool, all on ``params``' device.
    """
    params = _check_params(params)
    device = params.device
    matrices = pose_matrices(params, transform)
    inverse = torch.linalg.inv(matrices).float().to(device)
    scale = torch.sqrt(torch.linalg.det(matrices[:, :2, :2])).float().to(device)
    axis = (torch.arange(resolution, device=device, dtype=torch.float32) + 0.5) / resolution - 0.5
    qy, qx = (g.reshape(1, -1) for g in torch.meshgrid(axis, axis, indexing="ij"))
    images = torch.empty(len(params), 3, resolution * resolution, device=device)
    step = max(1, CHUNK_PIXELS // (resolution * resolution))
    for i in range(0, len(params), step):
        m = inverse[i : i + step]
        x = m[:, 0, :1] * qx + m[:, 0, 1:2] * qy + m[:, 0, 2:]
        y = m[:, 1, :1] * qx + m[:, 1, 1:2] * qy + m[:, 1, 2:]
        aa = (AA_PIXELS / (resolution * scale[i : i + step]))[:, None]
        images[i : i + step] = _draw(params[i : i + step], x, y, aa)
    images = (images.clamp(0, 1) * 2 - 1).reshape(len(params), 3, resolution, resolution)
    return RenderOutput(images, pixel_landmarks(params, resolution, transform), attribute_labels(params))


def pixel_landmarks(params: torch.Tensor, resolution: int, transform=None) -> torch.Tensor:
    """The landmarks :func:`render` returns, without rendering: ``[N, 68, 2]`` float32 pixel coordinates."""
    matrices = pose_matrices(params, transform)
    points = canonical_landmarks(params).double().cpu()
    moved = points @ matrices[:, :2, :2].transpose(1, 2) + matrices[:, None, :2, 2]
    return torch.from_numpy(unit_to_pixel(moved.numpy(), resolution)).float().to(params.device)
