"""The parameter vector of a synthetic face: its layout, as data, and how to draw random faces.

A face is one float32 row of ``len(PARAM_NAMES)`` numbers. Every entry except the pose is a "latent"
parameter with a documented range; :func:`params_from_normal` maps a standard-normal vector onto those
ranges with a fixed, deterministic function (the map a generator distils z -> face through). The pose
``(angle_deg, tx, ty, scale)`` is a similarity in the convention of :mod:`sg3pipe.transforms`: the
canonical, FFHQ-aligned face is moved by ``make_transform(angle_deg, tx, ty, scale)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sg3pipe.networks.stylegan3 import normalize_2nd_moment


@dataclass(frozen=True)
class Param:
    """One entry of the parameter vector."""

    name: str
    low: float  # value at the low end of its range (what params_from_normal maps u = -inf to)
    high: float  # value at the high end of its range (u = +inf)
    doc: str  # what it controls, and its unit


# The latent parameters, in vector order. Lengths are in canonical units (image widths of the aligned face).
LATENT_PARAMS: tuple[Param, ...] = (
    Param("face_width", 0.235, 0.285, "half-width of the face at the cheekbones"),
    Param("face_length", 0.31, 0.36, "face centre line to chin"),
    Param("jaw_shape", 1.7, 2.8, "superellipse exponent of the lower face: pointed chin (low) to square jaw"),
    Param("skin_tone", 0.0, 1.0, "light (0) to dark (1) skin"),
    Param("skin_warmth", 0.0, 1.0, "pink (0) to olive/yellow (1) undertone"),
    Param("hair_lightness", 0.0, 1.0, "black (0) through browns to blond (1)"),
    Param("hair_warmth", 0.0, 1.0, "ash (0) to red (1) hair"),
    Param("hair_length", 0.0, 1.0, "short (0, ends at the ears) to long (1, below the shoulders)"),
    Param("hair_volume", 0.0, 1.0, "how far the hair stands off the head"),
    Param("hairline", 0.0, 1.0, "low fringe (0) to high forehead (1)"),
    Param("hair_part", -1.0, 1.0, "horizontal offset of the hairline's apex (side parting)"),
    Param("brow_thickness", 0.0, 1.0, "thin (0) to bushy (1) eyebrows"),
    Param("brow_height", 0.0, 1.0, "distance of the brows above the eyes"),
    Param("brow_arch", 0.0, 1.0, "flat (0) to arched (1) brows"),
    Param("brow_raise", 0.0, 1.0, "expression: brows lifted"),
    Param("eye_size", 0.0, 1.0, "size of the eye opening and iris"),
    Param("eye_colour", 0.0, 1.0, "iris colour: brown, hazel, green, blue, grey"),
    Param("eye_openness", 0.0, 1.0, "expression: closed (0, blink) to wide open (1)"),
    Param("nose_width", 0.0, 1.0, "width of the nose base"),
    Param("nose_length", 0.0, 1.0, "height of the nose tip"),
    Param("mouth_width", 0.0, 1.0, "width of the mouth (mouth corners move sideways only)"),
    Param("lip_fullness", 0.0, 1.0, "thin (0) to full (1) lips"),
    Param("lip_redness", 0.0, 1.0, "lip colour, from skin-like to red"),
    Param("smile", 0.0, 1.0, "expression: neutral (0) to broad smile (1)"),
    Param("mouth_open", 0.0, 1.0, "expression: lips closed (0) to open (1)"),
    Param("glasses", 0.0, 1.0, "opacity of the glasses (0 none, 1 on)"),
    Param("glasses_shape", 0.0, 1.0, "round (0) to rectangular (1) frames"),
    Param("glasses_colour", 0.0, 1.0, "frame colour: black, brown, gold, red"),
    Param("bg_red", 0.0, 1.0, "background colour, red channel"),
    Param("bg_green", 0.0, 1.0, "background colour, green channel"),
    Param("bg_blue", 0.0, 1.0, "background colour, blue channel"),
    Param("cloth_hue", 0.0, 1.0, "hue of the clothing"),
    Param("cloth_lightness", 0.0, 1.0, "dark (0) to light (1) clothing"),
)

# The similarity pose, after the latent parameters. Identity is (0, 0, 0, 1).
POSE_NAMES: tuple[str, ...] = ("angle_deg", "tx", "ty", "scale")
POSE_IDENTITY: tuple[float, ...] = (0.0, 0.0, 0.0, 1.0)

LATENT_NAMES: list[str] = [p.name for p in LATENT_PARAMS]
PARAM_NAMES: list[str] = LATENT_NAMES + list(POSE_NAMES)
PARAM_INDEX: dict[str, int] = {name: i for i, name in enumerate(PARAM_NAMES)}
NUM_PARAMS = len(PARAM_NAMES)
NUM_LATENT = len(LATENT_NAMES)
POSE_SLICE = slice(NUM_LATENT, NUM_PARAMS)

# Glasses are on or off: the latent's uniform value u is pushed through a steep but continuous ramp centred
# here, so about 40% of faces wear glasses and few are half-transparent.
GLASSES_THRESHOLD = 0.6
GLASSES_RAMP = 0.08


def column(params: torch.Tensor, name: str) -> torch.Tensor:
    """The ``[N]`` column of ``params`` ``[N, NUM_PARAMS]`` called ``name``."""
    return params[:, PARAM_INDEX[name]]


def with_values(params: torch.Tensor, **values: float | torch.Tensor) -> torch.Tensor:
    """A copy of ``params`` ``[N, NUM_PARAMS]`` with the named columns set (scalars or ``[N]`` tensors)."""
    out = params.clone()
    for name, value in values.items():
        out[:, PARAM_INDEX[name]] = torch.as_tensor(value, dtype=out.dtype, device=out.device)
    return out


def params_from_normal(u: torch.Tensor) -> torch.Tensor:
    """The fixed map from standard-normal vectors to faces at the identity pose.

    Each latent parameter is ``low + (high - low) * Phi(u_i)`` (``Phi`` the normal CDF, so its values are
    uniform over the range when ``u ~ N(0, I)``); ``glasses`` instead goes through a steep ramp so it is
    mostly 0 or 1.

    Args:
        u: ``[N, NUM_LATENT]`` float tensor.

    Returns:
        ``[N, NUM_PARAMS]`` float32 parameters on ``u``'s device, pose = identity.
    """
    if u.ndim != 2 or u.shape[1] != NUM_LATENT:
        raise ValueError(f"u must have shape [N, {NUM_LATENT}], got {list(u.shape)}")
    uniform = torch.special.ndtr(u.float())
    glasses = PARAM_INDEX["glasses"]
    uniform[:, glasses] = ((uniform[:, glasses] - GLASSES_THRESHOLD) / GLASSES_RAMP + 0.5).clamp(0, 1)
    low = torch.tensor([p.low for p in LATENT_PARAMS], device=u.device)
    high = torch.tensor([p.high for p in LATENT_PARAMS], device=u.device)
    pose = torch.tensor(POSE_IDENTITY, device=u.device).expand(len(u), -1)
    return torch.cat([low + (high - low) * uniform, pose], dim=1)


def sample_params(n: int, seed_or_generator: int | torch.Generator) -> torch.Tensor:
    """``n`` random faces at the identity pose: :func:`params_from_normal` of seeded normal draws.

    Returns:
        ``[n, NUM_PARAMS]`` float32 CPU tensor. Face ``i`` depends only on the seed and ``i`` (not on ``n``).
    """
    generator = seed_or_generator
    if not isinstance(generator, torch.Generator):
        generator = torch.Generator().manual_seed(int(seed_or_generator))
    # One draw per face: torch fills large tensors in a different order than small ones.
    u = (
        torch.stack([torch.randn(NUM_LATENT, generator=generator) for _ in range(n)])
        if n
        else torch.empty(0, NUM_LATENT)
    )
    return params_from_normal(u)


def face_params(z: torch.Tensor) -> torch.Tensor:
    """The face a generator latent ``z [N, z_dim]`` (``z_dim >= NUM_LATENT``) stands for: ``[N, NUM_PARAMS]``
    renderer parameters at the identity pose (its first ``NUM_LATENT`` normalised entries through
    :func:`params_from_normal`)."""
    return params_from_normal(normalize_2nd_moment(z.float())[:, :NUM_LATENT])
